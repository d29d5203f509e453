"""edge.redact: credentials in URLs are masked, everything an operator needs to tell the camera stays."""

from __future__ import annotations

import pytest

from edge.redact import is_secret_name, redact_text, redact_url


@pytest.mark.parametrize(
    "url, shown",
    [
        ("rtsp://admin:hunter2@10.0.0.7:554/s1", "rtsp://***@10.0.0.7:554/s1"),
        ("rtsp://admin@10.0.0.7/s1", "rtsp://***@10.0.0.7/s1"),
        ("rtsp://admin:p@ss@cam/x?a=1", "rtsp://***@cam/x?a=1"),  # an unencoded "@" in the password
        ("rtsp://u:p%40x@cam", "rtsp://***@cam"),
        ("http://cam/video?user=admin&pwd=x&ch=1", "http://cam/video?user=***&pwd=***&ch=1"),
        ("https://h/hook?token=abc#frag", "https://h/hook?token=***#frag"),
        (
            "https://h/?X-Amz-Signature=zz&accessToken=q&keyframe=1",
            "https://h/?X-Amz-Signature=***&accessToken=***&keyframe=1",
        ),
        ("http://h/?api_key=1;sid=2", "http://h/?api_key=***;sid=***"),
        ("http://h/cb#access_token=abc", "http://h/cb#access_token=***"),
        ("http://[::1]:8080/p?password=", "http://[::1]:8080/p?password="),  # nothing to hide
        ("rtsp://cam.local:8554/line1", "rtsp://cam.local:8554/line1"),
        ("/dev/video0", "/dev/video0"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_redact_text_masks_urls_inside_messages():
    message = "cannot open 'rtsp://op:s3cret@10.0.0.7/s1' and http://h/?token=t0k: refused; mail a@b"
    assert redact_text(message) == "cannot open 'rtsp://***@10.0.0.7/s1' and http://h/?token=***: refused; mail a@b"


@pytest.mark.parametrize(
    "name", ["token", "PWD", "api_key", "apiKey", "X-Amz-Signature", "client_secret", "auth", "user"]
)
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["channel", "subtype", "keyframe", "resolution", "fps", "monkey", "author"])
def test_plain_names(name):
    assert not is_secret_name(name)
