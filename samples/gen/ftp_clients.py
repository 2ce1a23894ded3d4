#!/usr/bin/env python3
"""Two FTP control connections against a vsftpd with max_clients=1.

The first client logs in anonymously and stays connected; the second one is
refused by vsftpd with "421 There are too many connected users, please try
later."  Then the first client finishes and quits.  Exit status 0 only if the
second connection really got a 421.
Usage: ftp_clients.py HOST PORT
"""
import ftplib
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])

c1 = ftplib.FTP()
print("c1:", c1.connect(host, port, timeout=10))
print("c1:", c1.login("anonymous", "misdirect@example.test"))
print("c1:", c1.sendcmd("SYST"))
time.sleep(0.2)

got_421 = False
c2 = ftplib.FTP()
try:
    print("c2:", c2.connect(host, port, timeout=10))
    print("c2: unexpectedly accepted")
    c2.quit()
except ftplib.error_temp as e:
    print("c2:", e)
    got_421 = str(e).startswith("421")
finally:
    c2.close()

time.sleep(0.2)
print("c1:", c1.pwd())
print("c1:", c1.quit())
sys.exit(0 if got_421 else 1)
