"""HTTPS of the simulated devices: a CA of the run, and a certificate per device, issued lazily.

AXIS OS (since 7.20) ships a self-signed certificate named after the device (``axis-<serial>``).
The simulator issues each device a certificate of that name from one CA per run instead, so a
client trusts every device by trusting one file: the CA, written to the run's directory and
served at ``/sim/v1/ca.pem``. A scenario may bring its own CA (``tls.ca_cert``/``tls.ca_key``)
or a device its own certificate (``devices[].tls.cert``/``key``).

A device's certificate and TLS context are made on its first connection (a few milliseconds),
not at start-up: a fleet of 10,000 devices starts as fast as without HTTPS, and devices never
asked for over HTTPS cost nothing.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger("simulator.tls")

#: How long the run's CA and the certificates it issues are valid (leaves: the 398 days
#: browsers accept at most), counted from a day before now against clock skew.
CA_DAYS = 3650
LEAF_DAYS = 397
_SKEW = dt.timedelta(days=1)

CaKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class TLSError(Exception):
    """A certificate or key that cannot be used: the field it came from and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def device_hostname(serial: str) -> str:
    """The name AXIS OS gives a device (and its certificate): ``axis-<serial lower case>``."""
    return f"axis-{serial.lower()}"


def _read(path: str, field: str, what: str) -> bytes:
    """The bytes of a PEM file, or a TLSError naming the field."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        reason = e.strerror or e
        raise TLSError(field, f"cannot read {path!r}: {reason} (fix: a PEM {what})") from None


def _load_key(path: str, field: str) -> CaKey:
    """A PEM private key (EC or RSA, not encrypted)."""
    data = _read(path, field, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TLSError(field, f"{path!r} is encrypted; give the key without a passphrase") from None
    except ValueError:
        raise TLSError(field, f"{path!r} is no PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise TLSError(field, f"{path!r}: only EC and RSA keys are supported")
    return key


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA that issues the devices' certificates: its certificate and key."""

    cert: x509.Certificate
    key: CaKey

    @classmethod
    def generate(cls, name: str = "p8815-sim device CA") -> CertificateAuthority:
        """A new CA (EC P-256, valid ten years)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "p8815-sim"),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        now = dt.datetime.now(dt.UTC)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW)
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, cert_path: str, key_path: str, field: str = "tls") -> CertificateAuthority:
        """A CA from PEM files; a TLSError names ``field.ca_cert``/``ca_key`` and the problem."""
        data = _read(cert_path, f"{field}.ca_cert", "CA certificate")
        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError:
            raise TLSError(f"{field}.ca_cert", f"{cert_path!r} is no PEM certificate") from None
        key = _load_key(key_path, f"{field}.ca_key")
        if cert.public_key() != key.public_key():
            raise TLSError(f"{field}.ca_key", f"{key_path!r} is not the key of {cert_path!r}")
        try:
            ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca = False
        if not ca:
            raise TLSError(
                f"{field}.ca_cert", f"{cert_path!r} is not a CA certificate (basicConstraints CA)"
            )
        return cls(cert, key)

    @property
    def pem(self) -> bytes:
        """The CA certificate as PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write(self, directory: Path) -> tuple[str, str]:
        """Write the CA's certificate and (owner-only) key as PEM files: their paths."""
        cert, key = directory / "ca.pem", directory / "ca.key"
        cert.write_bytes(self.pem)
        key.touch(mode=0o600)
        key.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return str(cert), str(key)

    def issue(self, name: str, dns: list[str], ips: list[str]) -> bytes:
        """A server certificate for ``name`` with its key, as one PEM (key first).

        The subject's CN is ``name``; its subjectAltName lists ``dns`` names and ``ips``.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys([name, *dns])]
        alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in dict.fromkeys(ips)]
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW)
            .not_valid_after(min(now + dt.timedelta(days=LEAF_DAYS), self.cert.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(aki, critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return key_pem + cert.public_bytes(serialization.Encoding.PEM)


def _usage(ca: bool) -> x509.KeyUsage:
    """Key usage of a CA (signs certificates) or of a server (signs its handshakes)."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def server_context(cert: str, key: str | None = None) -> ssl.SSLContext:
    """A server-side TLS context with the certificate chain in ``cert`` (and ``key``)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # as AXIS OS: TLS 1.2 and 1.3
    ctx.load_cert_chain(cert, key)
    return ctx


def check_pair(cert: str, key: str, field: str) -> ssl.SSLContext:
    """The context of a supplied certificate and key, or a TLSError naming ``field``."""
    for path, name in ((cert, "cert"), (key, "key")):
        if not Path(path).is_file():
            raise TLSError(f"{field}.{name}", f"cannot read {path!r} (fix: a PEM file)")
    try:
        return server_context(cert, key)
    except ssl.SSLError as e:
        raise TLSError(
            field, f"{cert!r} and {key!r} are no PEM certificate and its key ({e.reason or e})"
        ) from None
    except OSError as e:
        raise TLSError(field, f"cannot read {cert!r} or {key!r}: {e.strerror or e}") from None


def is_loopback_or_any(host: str) -> bool:
    """Whether ``host`` is a loopback or an unspecified (every) address."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host == "localhost"
    return ip.is_loopback or ip.is_unspecified


@dataclass
class DeviceTLS:
    """One device's HTTPS: where it listens, and its TLS context once first asked for."""

    fleet: FleetTLS
    serial: str
    hosts: list[str]
    ip: str | None
    supplied: tuple[str, str] | None = None
    _context: ssl.SSLContext | None = field(default=None, repr=False)

    def context(self) -> ssl.SSLContext:
        """The device's server context: made (and its certificate issued) on first use."""
        if self._context is None:
            if self.supplied is not None:
                self._context = self.fleet.supplied_context(*self.supplied)
            else:
                dns, ips = alt_names(self.hosts, self.ip)
                name = device_hostname(self.serial)
                self._context = self.fleet.issue_context(name, dns, ips)
        return self._context


def alt_names(hosts: list[str], ip: str | None) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses a device's certificate lists besides its own name.

    The device's own IP, the addresses it listens on, and ``localhost`` (127.0.0.1, ::1)
    when it listens on loopback or every address, so clients verify the name they dial.
    """
    dns: list[str] = []
    ips = [ip] if ip else []
    for h in hosts:
        try:
            addr = ipaddress.ip_address(h.split("%", 1)[0])
        except ValueError:
            dns.append(h)
            continue
        if not addr.is_unspecified:
            ips.append(str(addr))
    if any(is_loopback_or_any(h) for h in hosts):
        dns.append("localhost")
        ips += ["127.0.0.1", "::1"]
    return dns, ips


class FleetTLS:
    """The HTTPS of one run: the CA (its PEM in a temporary directory) and the devices' TLS."""

    def __init__(self, ca: CertificateAuthority) -> None:
        self.ca = ca
        self.directory = Path(tempfile.mkdtemp(prefix="p8815-sim-tls-"))
        self.ca_path = self.directory / "ca.pem"
        self.ca_path.write_bytes(ca.pem)
        self._supplied: dict[tuple[str, str], ssl.SSLContext] = {}

    @classmethod
    def for_scenario(
        cls, ca_cert: str | None, ca_key: str | None, pairs: dict[str, tuple[str, str]]
    ) -> FleetTLS:
        """The run's TLS: the scenario's CA (or a new one), every supplied pair checked.

        ``pairs``: the certificate and key of each device that brings its own, by the field
        that names them (``devices.3.tls``). Raises TLSError naming a field at fault.
        """
        if ca_cert is not None and ca_key is not None:
            ca = CertificateAuthority.load(ca_cert, ca_key)
        else:
            ca = CertificateAuthority.generate()
        tls = cls(ca)
        try:
            for where, pair in pairs.items():
                if pair not in tls._supplied:
                    tls._supplied[pair] = check_pair(*pair, field=where)
        except BaseException:
            tls.close()
            raise
        return tls

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate as PEM (what ``/sim/v1/ca.pem`` serves)."""
        return self.ca.pem

    def device(
        self, serial: str, hosts: list[str], ip: str | None, supplied: tuple[str, str] | None
    ) -> DeviceTLS:
        """The HTTPS of the device of ``serial`` listening on ``hosts`` (its own IP ``ip``).

        Its certificate (``axis-<serial>``, see :func:`alt_names`) is issued on first use.
        """
        return DeviceTLS(self, serial, hosts, ip, supplied)

    def supplied_context(self, cert: str, key: str) -> ssl.SSLContext:
        """The context of a supplied certificate and key (one per distinct pair)."""
        ctx = self._supplied.get((cert, key))
        if ctx is None:
            ctx = self._supplied[(cert, key)] = server_context(cert, key)
        return ctx

    def issue_context(self, name: str, dns: list[str], ips: list[str]) -> ssl.SSLContext:
        """A context with a new certificate issued by the CA (``ssl`` loads chains from files)."""
        fd, tmp = tempfile.mkstemp(prefix=".leaf-", suffix=".pem", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.ca.issue(name, dns, ips))
            return server_context(tmp)
        finally:
            os.unlink(tmp)

    def close(self) -> None:
        """Remove the run's directory (the CA's PEM file with it)."""
        shutil.rmtree(self.directory, ignore_errors=True)
