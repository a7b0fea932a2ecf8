"""Writes fuzz/seeds/acme_jws/: ACME request bodies made by certbot's own JOSE stack
(python3-acme + josepy from Debian), so the seeds are what real clients send.
Run: /usr/bin/python3 fuzz/capture_josepy.py (Debian python3-acme)"""
import json, os
import josepy as jose
from acme import jws as acme_jws
from cryptography.hazmat.primitives.asymmetric import ec, rsa

out = os.path.join(os.path.dirname(__file__), "seeds", "acme_jws")
os.makedirs(out, exist_ok=True)
url = "https://localhost:8443/acme/new-account"
for name, key, alg in [
    ("es256", jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1())), jose.ES256),
    ("es384", jose.JWKEC(key=ec.generate_private_key(ec.SECP384R1())), jose.ES384),
    ("rs256", jose.JWKRSA(key=rsa.generate_private_key(65537, 2048)), jose.RS256),
]:
    payload = json.dumps({"termsOfServiceAgreed": True}).encode()
    msg = acme_jws.JWS.sign(payload, key=key, alg=alg, nonce=b"nonce-1234567890", url=url)
    with open(os.path.join(out, f"new_account_{name}.json"), "w") as f:
        f.write(msg.json_dumps())
    kid = acme_jws.JWS.sign(b"", key=key, alg=alg, nonce=b"nonce-abc", url=url, kid="https://localhost:8443/acme/acct/x")
    with open(os.path.join(out, f"post_as_get_{name}.json"), "w") as f:
        f.write(kid.json_dumps())
