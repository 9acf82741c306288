"""The Hyper Protect contract toolkit (reference hpcr-contract.md; docs/contract.md).

Native, openssl-compatible tools for the contracts that Hyper Protect Virtual Servers (and
their successors CCRT, CCRV, CCCO) boot from:

- :mod:`~kyok.contract.token`: section tokens ``<prefix>.<A>.<B>`` (RSA PKCS#1 v1.5 + openssl
  ``enc -aes-256-cbc -pbkdf2``), keys;
- :mod:`~kyok.contract.sections`: base64, base64 JSON and deterministic base64-tgz values;
- :mod:`~kyok.contract.contract`: whole contracts (YAML in and out, encrypt, sign, verify,
  decrypt, validate, inspect);
- :mod:`~kyok.contract.signing`: ``envWorkloadSignature`` and ``signingKey``;
- :mod:`~kyok.contract.expiry`: CA-issued signing certificates (contract expiry);
- :mod:`~kyok.contract.schema`: kyok's JSON Schema for decoded contracts;
- :mod:`~kyok.contract.templates`: contract templates;
- :mod:`~kyok.contract.attestation`, :mod:`~kyok.contract.volume`: attestation records and
  data-volume passphrases (docs/contract-attestation.md).

Names are imported from the module that owns them; this package re-exports nothing.
"""
