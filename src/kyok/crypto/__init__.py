"""kyok's hazmat layer: cryptographic primitives over pyca ``cryptography``, nothing else.

No I/O, no state, no clock, no logging. Everything here is for kyok's own layers and for
experts; the safe recipes are :mod:`kyok.unit` (server side) and ``kyok.client`` (SDK).

Modules: ``aead`` (kyok-aead-v1, plain AES-GCM), ``kdf`` (HKDF, scrypt), ``sign`` (Ed25519,
ECDSA P-256/P-384, ML-DSA-65), ``kem`` (X25519, ML-KEM-768, hybrid), ``rsa_oaep``, ``legacy``
(SHA-1 OAEP, AES-CBC), ``shamir``, ``xorsplit``, ``mkvp``, ``pbe`` (passphrase encryption),
``encoding``, ``errors``.
"""
