"""The local address a host uses to reach another: what a server binds so that the peer
it talks to (the hub, the worker nodes, the scheduler) can reach it back, on a site's
cluster network as on one host's loopback. No packet is sent: a UDP socket is "connected"
and the kernel's route names the local address.

``python -m sandfill.net toward HOST`` prints that address (a worker job's ``--host``);
``python -m sandfill.net url URL --toward PEER_URL`` prints URL with its host replaced by
the address toward PEER_URL's host (a notebook server's ``JUPYTERHUB_SERVICE_URL``)."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
import urllib.parse


class AddressError(RuntimeError):
    """No route (or no name resolution) toward the named host."""


def local_address_toward(host: str, port: int = 9) -> str:
    """The local IP address of the route toward ``host`` (a name or an address); raises
    :class:`AddressError` naming ``host`` when it does not resolve or has no route."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressError(f"{host!r} does not resolve: {exc}") from None
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect(sockaddr)
        except OSError as exc:
            raise AddressError(f"no route toward {host!r}: {exc.strerror or exc}") from None
        ip = str(s.getsockname()[0])
    return ip


def with_host(url: str, host: str) -> str:
    """``url`` with its host replaced by the address ``host`` (port, path and query kept)."""
    parts = urllib.parse.urlsplit(url)
    addr = ipaddress.ip_address(host)
    netloc = f"[{addr}]" if addr.version == 6 else str(addr)
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sandfill.net", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("toward", help="print the local address toward HOST")
    t.add_argument("host")
    u = sub.add_parser("url", help="print URL with its host replaced by the local address toward PEER_URL's host")
    u.add_argument("url")
    u.add_argument("--toward", required=True, metavar="PEER_URL")
    args = p.parse_args(argv)
    try:
        if args.what == "toward":
            print(local_address_toward(args.host))
        else:
            peer = urllib.parse.urlsplit(args.toward).hostname
            if not peer:
                raise AddressError(f"{args.toward!r} names no host")
            print(with_host(args.url, local_address_toward(peer)))
    except (AddressError, ValueError) as exc:
        print(f"sandfill.net: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
