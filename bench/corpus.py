"""Generate realistic newsletter-sized messages (30–80 KB HTML, nested tables) for benchmarks.

Deterministic for a given seed. Messages look like what bulk senders send: a preheader, nested
layout tables, hero and product images, buttons, a footer, a text/plain alternative, and the
tracking of a few ESPs (open pixels, wrapped links, UTM parameters); some are tracking-free.
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

WORDS = [
    "offer",
    "season",
    "garden",
    "coffee",
    "travel",
    "summer",
    "linen",
    "recipe",
    "winter",
    "sale",
    "launch",
    "member",
    "story",
    "weekly",
    "digest",
    "update",
    "product",
    "feature",
    "review",
    "guide",
    "city",
    "night",
    "market",
    "fresh",
    "local",
    "style",
]

ESPS = (
    # (open pixel url, click wrapper url template)
    (
        "https://u{n}.ct.sendgrid.net/wf/open?upn={tok}",
        "https://u{n}.ct.sendgrid.net/ls/click?upn={tok}",
    ),
    (
        "https://shop.us{n}.list-manage.com/track/open.php?u={tok}&id={n}&e={n}",
        "https://shop.us{n}.list-manage.com/track/click?u={tok}&id={n}&e={n}",
    ),
    (
        "https://{tok}.r.us-east-1.awstrack.me/I0/0100{tok}/{n}",
        "https://{tok}.r.us-east-1.awstrack.me/L0/https:%2F%2Fshop.example%2Fp%2F{n}%3Futm_source%3Dnl/1/0100{tok}/{n}",
    ),
    (None, "https://www.google.com/url?q=https://shop.example/p/{n}?utm_medium%3Demail&sa=D"),
    (None, None),
)


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _product(rng: random.Random, i: int, click: str | None, tok: str, dense: bool = True) -> str:
    href = (click or "https://shop.example/p/{n}?utm_source=newsletter").format(n=i, tok=tok)
    if not dense:
        return _story(rng, i, href)
    return f"""
<tr><td class="product" style="padding:12px 24px;border-bottom:1px solid #eeeeee">
 <table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"><tr>
  <td width="180" valign="top"><a href="{href}"><img src="https://cdn.shop.example/img/p{i}.jpg"
   srcset="https://cdn.shop.example/img/p{i}.jpg 1x, https://cdn.shop.example/img/p{i}@2x.jpg 2x"
   width="180" height="180" alt="{_text(rng, 3)}" style="display:block;border:0"></a></td>
  <td valign="top" style="padding-left:16px;font-family:Helvetica,Arial,sans-serif;font-size:15px;color:#333">
   <h3 style="margin:0 0 8px 0;font-size:18px">{_text(rng, 5).title()}</h3>
   <p style="margin:0 0 12px 0;line-height:22px">{_text(rng, rng.randint(40, 90))}</p>
   <table role="presentation" cellpadding="0" cellspacing="0"><tr><td bgcolor="#0a66c2" style="border-radius:4px">
    <a href="{href}" style="display:inline-block;padding:10px 18px;color:#fff;text-decoration:none">Shop now</a>
   </td></tr></table>
  </td></tr></table>
</td></tr>"""


def _story(rng: random.Random, i: int, href: str) -> str:
    """A block of a text-led newsletter: one image, one linked headline and a longer text. About
    1.4 references per KB overall, the density of the hand-written newsletters in samples/."""
    return f"""
<tr><td class="story" style="padding:16px 24px;border-bottom:1px solid #eeeeee;font-family:Georgia,serif">
 <table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"><tr>
  <td valign="top" style="font-size:16px;line-height:24px;color:#333">
   <h2 style="margin:0 0 8px 0;font-size:21px"><a href="{href}" style="color:#111;text-decoration:none">{_text(rng, 7).title()}</a></h2>
   <img src="https://cdn.shop.example/img/s{i}.jpg" width="552" height="276" alt="{_text(rng, 4)}" style="display:block;border:0;margin:0 0 12px 0">
   <p style="margin:0 0 12px 0">{_text(rng, rng.randint(55, 100))}</p>
   <p style="margin:0 0 12px 0">{_text(rng, rng.randint(25, 60))}</p>
  </td></tr></table>
</td></tr>"""


def newsletter_html(
    rng: random.Random, seq: int, target_kb: int, dense: bool = True
) -> tuple[str, str]:
    pixel, click = rng.choice(ESPS)
    tok = base64.b32encode(rng.randbytes(10)).decode().lower().rstrip("=")
    head = f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width"><title>{_text(rng, 4)}</title>
<style>body{{margin:0;padding:0}} .product h3{{color:#222}} @media (max-width:600px){{.product td{{display:block!important;width:100%!important}}}}</style>
</head><body style="background:#f4f4f4">
<div style="display:none;max-height:0;overflow:hidden">{_text(rng, 20)}</div>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" bgcolor="#f4f4f4"><tr><td align="center">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" bgcolor="#ffffff">
<tr><td style="padding:24px"><img src="https://cdn.shop.example/img/logo.png" width="160" height="40" alt="Shop"></td></tr>
<tr><td background="https://cdn.shop.example/img/hero-bg.jpg"><img src="https://cdn.shop.example/img/hero{seq % 7}.jpg" width="600" height="300" alt=""></td></tr>"""
    body = []
    size = len(head)
    i = 0
    while size < target_kb * 1024:
        block = _product(rng, seq * 100 + i, click, tok, dense)
        body.append(block)
        size += len(block)
        i += 1
    foot = f"""<tr><td style="padding:24px;font-size:12px;color:#888">{_text(rng, 30)}
<a href="https://shop.example/unsubscribe?u={tok}">Unsubscribe</a></td></tr>
</table></td></tr></table>"""
    if pixel:
        foot += f'<img src="{pixel.format(n=seq, tok=tok)}" width="1" height="1" alt="" style="display:block">'
    html = head + "".join(body) + foot + "</body></html>"
    text = f"{_text(rng, 80)}\n\nShop: {(click or 'https://shop.example/?utm_source=nl').format(n=seq, tok=tok)}\n"
    return html, text


def message(rng: random.Random, seq: int, attachment_kb: int = 0, dense: bool = True) -> bytes:
    html, text = newsletter_html(rng, seq, rng.randint(30, 80), dense)
    date = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=seq * 7)
    boundary = f"=_alt_{seq:08d}"
    parts = [
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n",
        f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n",
        f"--{boundary}--\r\n",
    ]
    body = "".join(parts)
    content_type = f'multipart/alternative; boundary="{boundary}"'
    if attachment_kb:
        mixed = f"=_mix_{seq:08d}"
        blob = (
            base64.encodebytes(rng.randbytes(attachment_kb * 1024)).decode().replace("\n", "\r\n")
        )
        body = (
            f"--{mixed}\r\nContent-Type: {content_type}\r\n\r\n{body}\r\n"
            f'--{mixed}\r\nContent-Type: application/pdf; name="invoice-{seq}.pdf"\r\n'
            f'Content-Disposition: attachment; filename="invoice-{seq}.pdf"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{blob}\r\n--{mixed}--\r\n"
        )
        content_type = f'multipart/mixed; boundary="{mixed}"'
    headers = (
        f"From: Shop {seq % 40} <news{seq % 40}@shop{seq % 40}.example>\r\n"
        f"To: alex@example.net\r\nSubject: {_text(rng, 6).title()}\r\n"
        f"Date: {format_datetime(date)}\r\nMessage-ID: <{seq}.{rng.getrandbits(32)}@shop.example>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n"
    )
    return (headers + body).encode("utf-8")


def corpus(
    count: int,
    seed: int = 1,
    attachment_every: int = 0,
    attachment_kb: int = 200,
    dense: bool = True,
):
    """`dense`: product grids, ~3.3 references per KB of HTML (URL-heavy); otherwise text-led
    stories at ~1.4 per KB, the density of the newsletters in samples/."""
    rng = random.Random(seed)
    for seq in range(count):
        with_attachment = attachment_every and seq % attachment_every == attachment_every - 1
        yield message(rng, seq, attachment_kb if with_attachment else 0, dense)
