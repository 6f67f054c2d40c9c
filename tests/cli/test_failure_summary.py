"""failure_summary(): the one line the command-line client prints when
opening a connection fails."""

from __future__ import annotations

import errno
import os
import ssl

from sansws.cli import failure_summary
from sansws.errors import InvalidStatus, OpenTimeout, RedirectError
from sansws.headers import Headers


def test_a_rejection_is_summarized_with_its_status_and_the_start_of_its_body() -> None:
    error = InvalidStatus(404, Headers(), b"No such\n  endpoint\n")
    assert failure_summary(error) == "server rejected the connection: HTTP 404: No such endpoint"


def test_failure_summary_describes_each_kind_of_failure() -> None:
    assert failure_summary(RedirectError("redirect loop: 302 back to ws://a/", 302, "/")) == (
        "redirect loop: 302 back to ws://a/"
    )
    assert failure_summary(InvalidStatus(500, headers=Headers())) == (
        "server rejected the connection: HTTP 500"
    )
    assert failure_summary(TimeoutError()) == "TimeoutError"
    assert failure_summary(OpenTimeout("timed out opening ws://a/ after 3 seconds")) == (
        "timed out opening ws://a/ after 3 seconds"
    )


def test_failure_summary_names_a_transport_error_in_words() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 1)")
    assert failure_summary(refused) == (
        f"{os.strerror(errno.ECONNREFUSED)} (Connect call failed ('127.0.0.1', 1))"
    )
    already_worded = ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
    assert failure_summary(already_worded) == os.strerror(errno.ECONNREFUSED)
    # A resolver error carries a negative code and its own message.
    assert failure_summary(OSError(-2, "Name or service not known")) == (
        "Name or service not known"
    )
    assert failure_summary(OSError("Multiple exceptions:\n one,\n two")) == (
        "Multiple exceptions: one, two"
    )


def test_failure_summary_names_tls_failures() -> None:
    unverified = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
    )
    unverified.verify_message = "self-signed certificate"
    assert failure_summary(unverified) == (
        "TLS certificate verification failed: self-signed certificate"
    )
    # ssl's errno is a library code, not an OS one: no strerror() for it.
    garbled = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    assert (
        failure_summary(garbled) == "TLS failed: [SSL: WRONG_VERSION_NUMBER] wrong version number"
    )
