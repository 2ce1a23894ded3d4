#!/usr/bin/env python3
"""Two SMTP connections against a Postfix with
smtpd_client_connection_count_limit = 1.

The first client (smtplib) reads the greeting, sends EHLO, MAIL FROM,
RCPT TO and DATA with a short message, and then stays connected while a
second client connects from the same address: Postfix refuses that one with
"421 4.7.0 <host> Error: too many connections from 127.0.0.1" as its greeting.
Then the first client sends QUIT.  Exit status 0 only if the message was
accepted on the first connection and the second one got a 421.
Usage: smtp_clients.py HOST PORT
"""
import smtplib
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
msg = (
    "From: alice@client.example.test\r\n"
    "To: bob@example.test\r\n"
    "Subject: misdirect sample\r\n"
    "\r\n"
    "A short message sent before the second connection was refused.\r\n"
)

c1 = smtplib.SMTP(timeout=10, local_hostname="client.example.test")
print("c1 greeting:", c1.connect(host, port))
print("c1 EHLO:", c1.ehlo())
print("c1 MAIL:", c1.mail("alice@client.example.test"))
print("c1 RCPT:", c1.rcpt("bob@example.test"))
code, resp = c1.data(msg)
print("c1 DATA:", code, resp)
accepted = code == 250
time.sleep(0.3)

got_421 = False
c2 = smtplib.SMTP(timeout=10, local_hostname="client.example.test")
try:
    # connect() returns the greeting instead of raising on a 4xx/5xx one
    code, resp = c2.connect(host, port)
    print("c2 greeting:", code, resp)
    got_421 = code == 421
    if not got_421:
        print("c2: unexpectedly accepted")
        c2.quit()
except smtplib.SMTPServerDisconnected as e:
    print("c2: disconnected:", e)
finally:
    c2.close()   # after a 421 greeting: no QUIT, Postfix has hung up

time.sleep(0.3)
print("c1 QUIT:", c1.quit())
sys.exit(0 if accepted and got_421 else 1)
