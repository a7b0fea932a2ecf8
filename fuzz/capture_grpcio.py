"""Records what a real gRPC client (grpcio, under py-spiffe) sends on a SPIFFE Workload API
socket: the HTTP/2 preface, SETTINGS and the HEADERS of one call, whose :authority is the
percent-encoded socket path. Seeds of the `workload_api_stream` fuzz target.

usage: python capture_grpcio.py OUT {x509|jwt}
"""
import os
import socket
import sys
import tempfile
import threading

out, call = sys.argv[1], sys.argv[2]
path = os.path.join(tempfile.mkdtemp(prefix="credmint-capture-"), "api.sock")
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(1)
received = bytearray()


def record():
    conn, _ = server.accept()
    conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # empty SETTINGS: go ahead
    conn.settimeout(1.5)
    try:
        while chunk := conn.recv(65536):
            received.extend(chunk)
    except socket.timeout:
        pass


thread = threading.Thread(target=record)
thread.start()
os.environ["SPIFFE_ENDPOINT_SOCKET"] = "unix://" + path
from spiffe import WorkloadApiClient  # noqa: E402 (reads the variable above)

client = WorkloadApiClient(default_timeout=1)
try:
    client.fetch_jwt_svid(audience={"billing"}) if call == "jwt" else client.fetch_x509_svid()
except Exception:  # noqa: BLE001 - nobody answers; only the request bytes matter
    pass
thread.join()
with open(out, "wb") as f:
    f.write(bytes(received))
