#!/bin/sh
# CGI without Content-Length; output comes in two bursts so Apache sends it
# with Transfer-Encoding: chunked on HTTP/1.1.
printf 'Content-Type: text/plain\r\n\r\n'
echo "chunk one from ${SERVER_NAME}"
sleep 0.3
echo "chunk two from ${SERVER_NAME}"
