#!/usr/bin/env python3
"""Conformance smoke test of a SPIFFE Workload API endpoint, using py-spiffe (PyPI `spiffe`, 0.3.x).

usage:
  SPIFFE_ENDPOINT_SOCKET=unix:///path/to/api.sock \
      python pyspiffe_check.py [--audience AUD] [--rotation-timeout SECS] [--expect-spiffe-id ID]
                               [--no-negative]

Prints one JSON object per line (an "event" per step); the last line is {"event": "done", "ok": ...}.
Exits 0 only if every step succeeded, 1 on the first failure (2 on bad usage).

Steps (py-spiffe public API unless marked "raw"):
  x509_svid         WorkloadApiClient.fetch_x509_svid(): parse (py-spiffe validates the leaf: exactly
                    one spiffe:// URI SAN with a path, BasicConstraints present with cA=false, KeyUsage
                    present with digitalSignature and without keyCertSign/cRLSign; intermediates cA +
                    keyCertSign), plus here: key matches the leaf, leaf signed by a bundle authority.
  x509_bundles      WorkloadApiClient.fetch_x509_bundles(): must hold the SVID's trust domain.
  x509_context      WorkloadApiClient.fetch_x509_context()
  jwt_bundles       WorkloadApiClient.fetch_jwt_bundles(): JWKS per trust domain, every key has a kid.
  jwt_svid          WorkloadApiClient.fetch_jwt_svid({aud}): parse_insecure checks alg allow-list,
                    typ JWT/JOSE, sub/aud/exp present, aud contains the requested audience, not expired;
                    plus here: offline JwtSvid.parse_and_validate() against the fetched JWT bundle.
  validate_jwt_svid WorkloadApiClient.validate_jwt_svid(token, aud) (py-spiffe ignores the response
                    body), plus raw ValidateJWTSVID to check response spiffe_id and claims.
  negative (raw)    no security header -> INVALID_ARGUMENT; FetchJWTSVID without audience ->
                    INVALID_ARGUMENT; ValidateJWTSVID with a wrong audience -> error (INVALID_ARGUMENT).
  jwt_bundle_stream WorkloadApiClient.stream_jwt_bundles(): first message arrives.
  x509_update       WorkloadApiClient.stream_x509_contexts(): wait for an SVID with a new serial.
"""
import argparse
import json
import os
import queue
import sys
import time
import traceback

import grpc
from cryptography.hazmat.primitives import serialization

from spiffe import JwtSvid, TrustDomain, WorkloadApiClient
from spiffe._proto import workload_pb2, workload_pb2_grpc  # raw stubs shipped with py-spiffe


def emit(event, **kw):
    print(json.dumps({"event": event, **kw}, default=str), flush=True)


def spki(key):
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def grpc_target(endpoint):
    # same normalisation py-spiffe applies: unix:///p and unix:/p -> unix:/p
    if not endpoint.startswith("unix:"):
        raise SystemExit("SPIFFE_ENDPOINT_SOCKET must be a unix: URI (py-spiffe supports UDS only)")
    return "unix:/" + endpoint[5:].lstrip("/")


def svid_info(svid):
    leaf = svid.leaf
    return {
        "spiffe_id": str(svid.spiffe_id),
        "serial": format(leaf.serial_number, "x"),
        "not_before": leaf.not_valid_before_utc.isoformat(),
        "not_after": leaf.not_valid_after_utc.isoformat(),
        "chain_len": len(svid.cert_chain),
        "key_type": type(svid.private_key).__name__,
    }


def check_x509_svid(svid, bundle_set, expect_id):
    info = svid_info(svid)
    if expect_id and info["spiffe_id"] != expect_id:
        raise AssertionError(f"SPIFFE ID {info['spiffe_id']} != expected {expect_id}")
    if spki(svid.private_key.public_key()) != spki(svid.leaf.public_key()):
        raise AssertionError("x509_svid_key does not match the leaf certificate public key")
    bundle = bundle_set.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
    if bundle is None:
        raise AssertionError(f"no X.509 bundle for trust domain {svid.spiffe_id.trust_domain}")
    # issuer of the last cert of the chain must be an authority of the bundle
    top = svid.cert_chain[-1]
    chain = svid.cert_chain
    for child, parent in zip(chain, chain[1:]):
        child.verify_directly_issued_by(parent)
    for ca in bundle.x509_authorities:
        try:
            top.verify_directly_issued_by(ca)
            break
        except Exception:
            continue
    else:
        raise AssertionError("SVID chain does not verify against any bundle authority")
    return info


def raw_call_code(fn):
    try:
        fn()
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--audience", default="spiffe://example.org/reports")
    ap.add_argument("--rotation-timeout", type=float, default=120.0,
                    help="seconds to wait for a renewed X.509-SVID on the stream (0 = skip)")
    ap.add_argument("--expect-spiffe-id", default=None)
    ap.add_argument("--no-negative", action="store_true", help="skip the error-code checks")
    args = ap.parse_args()

    endpoint = os.environ.get("SPIFFE_ENDPOINT_SOCKET")
    if not endpoint:
        emit("done", ok=False, error="SPIFFE_ENDPOINT_SOCKET is not set")
        return 2
    emit("start", endpoint=endpoint, audience=args.audience)

    step = "connect"
    client = None
    try:
        # socket_path=None -> SPIFFE_ENDPOINT_SOCKET; the socket file must exist at construction
        client = WorkloadApiClient(default_timeout=15)

        step = "x509_svid"
        svid = client.fetch_x509_svid()

        step = "x509_bundles"
        bundles = client.fetch_x509_bundles()
        emit("x509_bundles", ok=True, trust_domains={
            str(b.trust_domain): len(b.x509_authorities) for b in bundles.bundles})

        step = "x509_svid"
        emit("x509_svid", ok=True, **check_x509_svid(svid, bundles, args.expect_spiffe_id))

        step = "x509_context"
        ctx = client.fetch_x509_context()
        emit("x509_context", ok=True, svids=[svid_info(s) for s in ctx.x509_svids],
             bundle_trust_domains=sorted(str(b.trust_domain) for b in ctx.x509_bundle_set.bundles))
        check_x509_svid(ctx.default_svid, ctx.x509_bundle_set, args.expect_spiffe_id)

        step = "jwt_bundles"
        jwt_bundles = client.fetch_jwt_bundles()
        emit("jwt_bundles", ok=True, trust_domains={
            str(b.trust_domain): sorted(b.jwt_authorities) for b in jwt_bundles.bundles})

        step = "jwt_svid"
        jwt = client.fetch_jwt_svid(audience={args.audience})
        header = json.loads(__import__("base64").urlsafe_b64decode(
            jwt.token.split(".")[0] + "=" * (-len(jwt.token.split(".")[0]) % 4)))
        if args.expect_spiffe_id and str(jwt.spiffe_id) != args.expect_spiffe_id:
            raise AssertionError(f"JWT sub {jwt.spiffe_id} != expected {args.expect_spiffe_id}")
        jb = jwt_bundles.get_bundle_for_trust_domain(jwt.spiffe_id.trust_domain)
        if jb is None:
            raise AssertionError(f"no JWT bundle for {jwt.spiffe_id.trust_domain}")
        offline = JwtSvid.parse_and_validate(jwt.token, jb, {args.audience})
        emit("jwt_svid", ok=True, spiffe_id=str(jwt.spiffe_id), audience=sorted(jwt.audience),
             expiry=jwt.expiry, ttl=jwt.expiry - int(time.time()), header=header,
             offline_signature_ok=str(offline.spiffe_id) == str(jwt.spiffe_id))

        step = "validate_jwt_svid"
        validated = client.validate_jwt_svid(jwt.token, args.audience)
        # raw call: check the response body (py-spiffe discards it)
        channel = grpc.insecure_channel(grpc_target(endpoint))
        stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)
        md = [("workload.spiffe.io", "true")]
        resp = stub.ValidateJWTSVID(workload_pb2.ValidateJWTSVIDRequest(
            audience=args.audience, svid=jwt.token), metadata=md, timeout=15)
        claims = json.loads(__import__("google.protobuf.json_format", fromlist=["x"])
                            .MessageToJson(resp.claims)) if resp.HasField("claims") else {}
        if resp.spiffe_id != str(jwt.spiffe_id):
            raise AssertionError(f"ValidateJWTSVID spiffe_id {resp.spiffe_id!r} != {jwt.spiffe_id}")
        for c in ("sub", "aud", "exp"):
            if c not in claims:
                raise AssertionError(f"ValidateJWTSVID claims lack {c!r}: {claims}")
        emit("validate_jwt_svid", ok=True, spiffe_id=str(validated.spiffe_id),
             response_spiffe_id=resp.spiffe_id, claims=claims)

        if not args.no_negative:
            step = "negative"
            codes = {
                "no_security_header": raw_call_code(lambda: next(iter(
                    stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), timeout=15)))),
                "jwt_svid_without_audience": raw_call_code(lambda: stub.FetchJWTSVID(
                    workload_pb2.JWTSVIDRequest(), metadata=md, timeout=15)),
                "validate_wrong_audience": raw_call_code(lambda: stub.ValidateJWTSVID(
                    workload_pb2.ValidateJWTSVIDRequest(audience=args.audience + "-other",
                                                        svid=jwt.token), metadata=md, timeout=15)),
                "validate_garbage_token": raw_call_code(lambda: stub.ValidateJWTSVID(
                    workload_pb2.ValidateJWTSVIDRequest(audience=args.audience, svid="a.b.c"),
                    metadata=md, timeout=15)),
            }
            bad = {k: v for k, v in codes.items() if v != "INVALID_ARGUMENT"}
            emit("negative", ok=not bad, codes=codes)
            if bad:
                raise AssertionError(f"expected INVALID_ARGUMENT, got {bad}")
        channel.close()

        step = "jwt_bundle_stream"
        q = queue.Queue()
        h = client.stream_jwt_bundles(lambda bs: q.put(("ok", bs)), lambda e: q.put(("err", e)),
                                      retry_connect=False)
        kind, val = q.get(timeout=15)
        h.cancel()
        if kind != "ok":
            raise AssertionError(f"stream_jwt_bundles error: {val}")
        emit("jwt_bundle_stream", ok=True, trust_domains=sorted(str(b.trust_domain) for b in val.bundles))

        if args.rotation_timeout > 0:
            step = "x509_update"
            q = queue.Queue()
            h = client.stream_x509_contexts(lambda c: q.put(("ok", c)), lambda e: q.put(("err", e)),
                                            retry_connect=False)
            deadline = time.monotonic() + args.rotation_timeout
            first = None
            try:
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise AssertionError(
                            f"no renewed SVID within {args.rotation_timeout}s (serial stayed {first})")
                    try:
                        kind, val = q.get(timeout=remaining)
                    except queue.Empty:
                        continue
                    if kind != "ok":
                        raise AssertionError(f"stream_x509_contexts error: {val}")
                    info = check_x509_svid(val.default_svid, val.x509_bundle_set, args.expect_spiffe_id)
                    emit("x509_update", ok=True, **info)
                    if first is None:
                        first = info["serial"]
                    elif info["serial"] != first:
                        emit("x509_rotated", ok=True, old_serial=first, new_serial=info["serial"])
                        break
            finally:
                h.cancel()

        emit("done", ok=True)
        return 0
    except Exception as e:  # noqa: BLE001 - report any failure as a JSON line
        emit(step, ok=False, error=f"{type(e).__name__}: {e}",
             trace=traceback.format_exc(limit=3).splitlines()[-3:])
        emit("done", ok=False, failed_step=step)
        return 1
    finally:
        if client is not None:
            client.close()


if __name__ == "__main__":
    sys.exit(main())
