/*
 * sslkeylog.c - LD_PRELOAD shim that makes any OpenSSL 1.1.1 / 3.x program
 * write an NSS key log file (the format of SSLKEYLOGFILE, read by Wireshark),
 * for servers such as nginx and Apache httpd that have no option for it.
 *
 * Build:  gcc -shared -fPIC -O2 -Wall -o sslkeylog.so sslkeylog.c -lssl -ldl
 * Use:    SSLKEYLOGFILE=/path/keys.log LD_PRELOAD=/path/sslkeylog.so nginx ...
 *
 * It wraps SSL_CTX_new, SSL_CTX_new_ex (OpenSSL 3) and SSL_new: every
 * context gets SSL_CTX_set_keylog_callback(ctx, log_line), which OpenSSL
 * calls with one complete key log line (CLIENT_RANDOM ... for TLS 1.2,
 * CLIENT_HANDSHAKE_TRAFFIC_SECRET / SERVER_... / CLIENT_TRAFFIC_SECRET_0 /
 * ... for TLS 1.3) whenever it derives a secret; the line is appended to
 * $SSLKEYLOGFILE with a single write() on an O_APPEND descriptor, so lines
 * from several processes (master and workers) do not interleave.  A context
 * that already has a key log callback of its own keeps it.
 *
 * The file is opened when the first context is made.  Servers make their
 * contexts while reading their configuration, as root, before they fork
 * workers and drop privileges; the workers inherit the descriptor.  If that
 * open failed, every callback tries again.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

static int keylog_fd = -1;

static void open_keylog(void)
{
    const char *path;

    if (keylog_fd >= 0)
        return;
    path = getenv("SSLKEYLOGFILE");
    if (path == NULL || *path == '\0')
        return;
    keylog_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static void log_line(const SSL *ssl, const char *line)
{
    char buf[1024];
    size_t n = strlen(line);

    (void)ssl;
    open_keylog();
    if (keylog_fd < 0 || n + 1 > sizeof(buf))
        return;
    memcpy(buf, line, n);
    buf[n] = '\n';
    if (write(keylog_fd, buf, n + 1) < 0) {
        /* nothing sensible to do in a key log callback */
    }
}

static void hook(SSL_CTX *ctx)
{
    if (ctx != NULL && SSL_CTX_get_keylog_callback(ctx) == NULL) {
        open_keylog();
        SSL_CTX_set_keylog_callback(ctx, log_line);
    }
}

static void *next_symbol(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

SSL_CTX *SSL_CTX_new(const SSL_METHOD *method)
{
    static SSL_CTX *(*real)(const SSL_METHOD *);
    SSL_CTX *ctx;

    if (real == NULL)
        real = (SSL_CTX *(*)(const SSL_METHOD *))next_symbol("SSL_CTX_new");
    if (real == NULL)
        return NULL;
    ctx = real(method);
    hook(ctx);
    return ctx;
}

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq, const SSL_METHOD *method)
{
    static SSL_CTX *(*real)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *);
    SSL_CTX *ctx;

    if (real == NULL)
        real = (SSL_CTX *(*)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *))next_symbol("SSL_CTX_new_ex");
    if (real == NULL)
        return NULL;
    ctx = real(libctx, propq, method);
    hook(ctx);
    return ctx;
}
#endif

SSL *SSL_new(SSL_CTX *ctx)
{
    static SSL *(*real)(SSL_CTX *);

    if (real == NULL)
        real = (SSL *(*)(SSL_CTX *))next_symbol("SSL_new");
    if (real == NULL)
        return NULL;
    hook(ctx);
    return real(ctx);
}
