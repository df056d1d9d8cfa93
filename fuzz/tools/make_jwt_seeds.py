#!/usr/bin/env python3
"""Seed tokens for the `jwt` target (fuzz/corpus/jwt/seed-*). None of them may verify:
each breaks exactly one rule (expired, wrong aud, unknown iss, ...). Run from fuzz/."""
import json, base64, hmac, hashlib, os
from cryptography.hazmat.primitives import serialization, hashes
from cryptography.hazmat.primitives.asymmetric import padding, ec, utils

ISS, AUD, NOW = "https://ehr.example.org", "https://cds.example.org/cds-services/dvt-patient-view", 1700000000
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def load(n): return serialization.load_pem_private_key(open(f"keys/{n}.pem", "rb").read(), None)
def sign(alg, key, msg):
    if alg.startswith("RS"):
        h = hashes.SHA256() if alg == "RS256" else hashes.SHA384()
        return key.sign(msg, padding.PKCS1v15(), h)
    if alg.startswith("ES"):
        h, size = (hashes.SHA256(), 32) if alg == "ES256" else (hashes.SHA384(), 48)
        r, s = utils.decode_dss_signature(key.sign(msg, ec.ECDSA(h)))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg.startswith("HS"):
        return hmac.new(key, msg, hashlib.sha256).digest()
    return b""
def tok(alg, keyname, header=None, claims=None):
    h = {"alg": alg, "typ": "JWT", "kid": keyname if keyname else None}
    h = {k: v for k, v in h.items() if v is not None}
    h.update(header or {})
    c = {"iss": ISS, "aud": AUD, "exp": NOW + 300, "iat": NOW, "jti": "j-" + alg}
    c.update(claims or {})
    c = {k: v for k, v in c.items() if v is not None}
    msg = (b64(json.dumps(h).encode()) + "." + b64(json.dumps(c).encode())).encode()
    key = {"rsa-1": "rsa", "rsa-384": "rsa", "ec-256": "ec-256", "ec-384": "ec-384"}.get(keyname)
    if key:
        sig = sign(alg, load(key), msg)
    elif alg.startswith("HS"):
        sig = sign(alg, b"fuzz-secret", msg)
    else:
        sig = b"\x01" * 64
    return msg.decode() + "." + b64(sig)
seeds = {
    "expired-rs256": tok("RS256", "rsa-1"),
    "expired-rs384": tok("RS384", "rsa-384"),
    "expired-es256": tok("ES256", "ec-256"),
    "expired-es384": tok("ES384", "ec-384"),
    "wrong-aud": tok("ES384", "ec-384", claims={"aud": "https://other.example.org", "exp": 4102444800}),
    "unknown-iss": tok("ES256", "ec-256", claims={"iss": "https://evil.example.org", "exp": 4102444800}),
    "no-jti": tok("RS256", "rsa-1", claims={"jti": None, "aud": [AUD, "x"]}),
    "nbf-future": tok("ES256", "ec-256", claims={"nbf": 4102444800, "exp": 4102444900}),
    "alg-none": tok("none", "rsa-1"),
    "hs256-oct": tok("HS256", "oct-1", claims={"exp": 4102444800}),
    "key-alg-mismatch": tok("RS256", "rsa-384", claims={"exp": 4102444800, "aud": "nope"}),
    "ec-as-rs": tok("RS256", "ec-mislabelled", claims={"exp": 4102444800}),
    "unknown-kid": tok("ES384", "nope"),
    "jku-unlisted": tok("ES384", "ec-384", header={"jku": "http://127.0.0.1:9/jwks"}),
    "no-kid": tok("ES384", None),
}
os.makedirs("corpus/jwt", exist_ok=True)
for name, t in seeds.items():
    open(f"corpus/jwt/seed-{name}", "w").write(t)
print(len(seeds), "seeds")
