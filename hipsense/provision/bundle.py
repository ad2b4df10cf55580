"""The Pi's config bundle: a directory with ``hipsense.toml`` (0600) and the broker's CA certificate.

The install script copies it to the Pi. The ``[mqtt]`` keys are the Pi service's config keys
(host, port, tls_ca_file, username, password, patient_id), and nothing else, so a strict
config reader accepts the file as it is. ``tls_ca_file`` is where the install script puts
``ca.crt`` on the Pi, not where it lies in the bundle.
"""

from __future__ import annotations

from pathlib import Path

from hipsense.provision.errors import ProvisionError
from hipsense.provision.files import make_private_dir, write_private

CONFIG_NAME = "hipsense.toml"
CA_NAME = "ca.crt"
DEFAULT_PI_CA_PATH = "/etc/hipsense/ca.crt"


def read_ca_certificate(path: Path) -> bytes:
    """The CA certificate to ship; refuses anything holding a private key (it would leave with the bundle)."""
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise ProvisionError(f"cannot read the CA certificate {path}: {exc.strerror}") from exc
    if b"PRIVATE KEY-----" in pem:
        raise ProvisionError(f"{path} holds a private key: give the CA certificate only")
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ProvisionError(f"{path} is not a PEM certificate")
    return pem


def toml_string(value: str) -> str:
    """A TOML basic string (tomllib can read but not write; this is the one type we need)."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def render_pi_config(*, host: str, port: int, ca_path_on_pi: str, username: str, password: str,
                     patient_id: str, created_at: str) -> str:
    return (
        f"# hipsense Pi configuration for patient {patient_id}, written {created_at}.\n"
        "# It holds the Pi's MQTT password: keep it mode 0600, delete copies once installed.\n"
        f"# Broker: mqtts://{host}:{port} (TLS; the CA certificate is {CA_NAME} in this bundle).\n"
        "[mqtt]\n"
        f"host = {toml_string(host)}\n"
        f"port = {int(port)}\n"
        f"tls_ca_file = {toml_string(ca_path_on_pi)}\n"
        f"username = {toml_string(username)}\n"
        f"password = {toml_string(password)}\n"
        f"patient_id = {toml_string(patient_id)}\n"
    )


def write_bundle(directory: Path, config_text: str, ca_pem: bytes) -> Path:
    directory = make_private_dir(directory)
    write_private(directory / CA_NAME, ca_pem)
    write_private(directory / CONFIG_NAME, config_text)
    return directory


def remove_bundle(directory: Path) -> bool:
    """Delete a revoked patient's bundle: its password is dead, but it should not linger."""
    directory = Path(directory)
    if not directory.is_dir():
        return False
    for name in (CONFIG_NAME, CA_NAME):
        (directory / name).unlink(missing_ok=True)
    try:
        directory.rmdir()
    except OSError:
        pass  # someone put other files there: leave them
    return True
