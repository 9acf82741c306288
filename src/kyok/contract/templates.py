"""Starting points for new contracts (``kyok contract contract-template``).

One template per platform flavour, for the workload section, the env section, or both in one
contract file. Every value that must be replaced says so (``REPLACE…``); apart from the
compose archive, each template passes validation for its platform as it is, so that a user
who fills in the blanks is left with a valid contract.
"""

from __future__ import annotations

from kyok.contract.token import ContractError

__all__ = ["TEMPLATE_KINDS", "TEMPLATE_PLATFORMS", "contract_template", "schema_platform"]

TEMPLATE_KINDS: tuple[str, ...] = ("contract", "workload", "env")
TEMPLATE_PLATFORMS: tuple[str, ...] = ("hpvs", "ccrt", "ccrv", "ccco-peerpod", "ccco-bmtl")

_COMPOSE_WORKLOAD = """\
type: workload
# Registry credentials, only for private images (key: registry host).
# auths:
#   us.icr.io:
#     username: iamapikey
#     password: REPLACE_WITH_API_KEY
compose:
  # kyok contract base64-tgz --in ./folder-with-docker-compose.yaml
  archive: REPLACE_WITH_BASE64_TGZ
# Or pods instead of compose (exactly one of compose and play):
# play:
#   resources:
#     - apiVersion: v1
#       kind: Pod
#       metadata:
#         name: app
#       spec:
#         containers:
#           - name: main
#             image: registry.example.com/app@sha256:REPLACE_WITH_DIGEST
volumes:
  data:
    mount: /mnt/data
    filesystem: ext4
    # at least 15 characters of a-z A-Z 0-9 !@#$%^&*(),.?":{}|<>_- ; the env section holds the other seed
    seed: REPLACE-with-a-long-random-workload-seed
env:
  EXAMPLE_SETTING: "REPLACE_OR_REMOVE"
"""

_PLAY_WORKLOAD = """\
type: workload
play:
  resources:
    - apiVersion: v1
      kind: Pod
      metadata:
        name: app
      spec:
        containers:
          - name: main
            image: registry.example.com/app@sha256:REPLACE_WITH_DIGEST
            envFrom:
              - configMapRef:
                  name: contract.config.map
                  optional: false
        restartPolicy: Never
volumes:
  data:
    mount: /mnt/data
    filesystem: ext4
    seed: REPLACE-with-a-long-random-workload-seed
"""

_COCO_WORKLOAD = """\
type: workload
confidential-containers: {}
"""

_COCO_BMTL_WORKLOAD = """\
type: workload
confidential-containers: {}
volumes:
  data:
    mount: /mnt/data
    filesystem: ext4
    seed: REPLACE-with-a-long-random-workload-seed
"""

_STANDARD_ENV = """\
type: env
logging:
  # IBM Cloud Logs; or syslog with hostname, port, server (CA PEM), cert and key
  logRouter:
    hostname: REPLACE.ingress.REGION.logs.cloud.ibm.com
    iamApiKey: REPLACE_WITH_IAM_API_KEY
    port: 443
volumes:
  data:
    seed: REPLACE-with-a-long-random-env-seed
env:
  EXAMPLE_VALUE: "REPLACE_OR_REMOVE"
"""

_COCO_ENV = """\
type: env
logging:
  logRouter:
    hostname: REPLACE.ingress.REGION.logs.cloud.ibm.com
    iamApiKey: REPLACE_WITH_IAM_API_KEY
"""

_COCO_BMTL_ENV = """\
type: env
logging:
  logRouter:
    hostname: REPLACE.ingress.REGION.logs.cloud.ibm.com
    iamApiKey: REPLACE_WITH_IAM_API_KEY
volumes:
  data:
    seed: REPLACE-with-a-long-random-env-seed
host-attestation:
  host1:
    description: REPLACE with the host's name
    host-key-doc: UkVQTEFDRSB3aXRoIGJhc2U2NCBvZiB0aGUgaG9zdCBrZXkgZG9jdW1lbnQ=
"""

_TEMPLATES: dict[str, tuple[str, str]] = {
    "hpvs": (_COMPOSE_WORKLOAD, _STANDARD_ENV),
    "ccrt": (_COMPOSE_WORKLOAD, _STANDARD_ENV),
    "ccrv": (_PLAY_WORKLOAD, _STANDARD_ENV),
    "ccco-peerpod": (_COCO_WORKLOAD, _COCO_ENV),
    "ccco-bmtl": (_COCO_BMTL_WORKLOAD, _COCO_BMTL_ENV),
}


def schema_platform(template_platform: str) -> str:
    """The schema platform of a template flavour (``ccco-peerpod`` -> ``ccco``)."""
    return "ccco" if template_platform.startswith("ccco") else template_platform


def _indent(text: str) -> str:
    return "".join(f"  {line}" if line.strip() else line for line in text.splitlines(keepends=True))


def contract_template(kind: str = "contract", platform: str = "hpvs") -> str:
    """A template: the workload section, the env section, or a contract holding both.

    Args:
        kind: ``contract``, ``workload`` or ``env``.
        platform: ``hpvs``, ``ccrt``, ``ccrv``, ``ccco-peerpod`` or ``ccco-bmtl``.

    Raises:
        ContractError: an unknown kind or platform.
    """
    if kind not in TEMPLATE_KINDS:
        raise ContractError(f"unknown template type {kind!r}: use {', '.join(TEMPLATE_KINDS)}")
    if platform not in _TEMPLATES:
        raise ContractError(f"unknown platform {platform!r}: use {', '.join(TEMPLATE_PLATFORMS)}")
    workload, env = _TEMPLATES[platform]
    if kind == "workload":
        return workload
    if kind == "env":
        return env
    return f"workload: |\n{_indent(workload)}env: |\n{_indent(env)}"
