"""Helpers the message builders (esp_messages.py, non_esp_messages.py, negative_messages.py) share,
and the list they add their messages to; build_corpus.py writes them out.

Every remote load / link is emitted through a helper that also records the
expected finding, so the manifest is written from how each message was built
(never from guard's rules or output)."""
import base64, html, json, random, re, urllib.parse
from email.charset import Charset, QP, BASE64
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.mime.image import MIMEImage
from email.mime.application import MIMEApplication
from email.utils import format_datetime, make_msgid
import datetime

SEED = 20240917
R = random.Random(SEED)  # every token, date and choice of the corpus comes from here, in build order
RCPT = "alex@example.net"

def hexs(n): return "".join(R.choice("0123456789abcdef") for _ in range(n))
def HEX(n): return hexs(n).upper()
def alnum(n): return "".join(R.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))
def lower(n): return "".join(R.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))
def b64tok(n): return "".join(R.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") for _ in range(n))
def digits(n): return str(R.randint(1, 9)) + "".join(R.choice("0123456789") for _ in range(n - 1))
def uuid(): return f"{hexs(8)}-{hexs(4)}-4{hexs(3)}-{R.choice('89ab')}{hexs(3)}-{hexs(12)}"
def b64u(s, pad=False):
    out = base64.urlsafe_b64encode(s.encode()).decode()
    return out if pad else out.rstrip("=")
def b64(s): return base64.b64encode(s.encode()).decode()
def q(s, safe=""): return urllib.parse.quote(s, safe=safe)

PARAM_FAMILIES = [
    (lambda k: k.startswith("utm_"), "UTM campaign parameters"),
    (lambda k: k in ("mc_cid", "mc_eid"), "Mailchimp"),
    (lambda k: k in ("_hsenc", "_hsmi"), "HubSpot"),
    (lambda k: k == "mkt_tok", "Marketo"),
]

def tracking_params(url):
    qs = urllib.parse.urlsplit(url).query
    names = sorted({k for k, _ in urllib.parse.parse_qsl(qs, keep_blank_values=True)})
    for test, tracker in PARAM_FAMILIES:
        hit = [k for k in names if test(k)]
        if hit:
            return tracker, hit
    return None

BASE_DATE = datetime.datetime(2024, 9, 2, 8, 0, tzinfo=datetime.timezone.utc)

class Msg:
    def __init__(self, name, desc, evidence, frm, subject, tracking=None, headers=(),
                 charset="utf-8", enc="qp", text_enc=None, date_offset_h=0, tz=0):
        self.name, self.desc, self.evidence = name, desc, evidence
        self.frm, self.subject = frm, subject
        self.tracking_override = tracking
        self.headers = list(headers)
        self.charset, self.enc, self.text_enc = charset, enc, text_enc or enc
        self.findings, self.seen = [], set()
        self.date = BASE_DATE + datetime.timedelta(hours=date_offset_h * 7 + R.randint(0, 400), minutes=R.randint(0, 59), seconds=R.randint(0, 59))
        self.tz = tz

    # ---- finding bookkeeping
    def add(self, kind, url=None, tracker=None, destination=None, params=None, header=None, note=None, comment=()):
        """note: a comment at the end of the finding's url line; comment: lines written above it."""
        key = (kind, url if url is not None else header)
        if key in self.seen:
            return
        self.seen.add(key)
        f = {"kind": kind}
        if tracker is not None: f["tracker"] = tracker
        if url is not None: f["url"] = url
        if destination is not None: f["destination"] = destination
        if params is not None: f["params"] = params
        if header is not None: f["header"] = header
        if note: f["note"] = note
        if comment: f["comment"] = list(comment)
        self.findings.append(f)

    def _dest_params(self, dest):
        tp = tracking_params(dest)
        if tp:
            self.add("param", dest, tracker=tp[0], params=tp[1])

    # ---- HTML emitters
    def img(self, url, kind="remote", tracker=None, attrs="", alt=""):
        self.add(kind, url, tracker=tracker)
        return f'<img src="{html.escape(url)}" alt="{alt}" {attrs}>'.replace(" >", ">")

    def load(self, url, kind="remote", tracker=None):
        """Register a load emitted by hand (CSS url(), srcset candidate...); returns the escaped URL."""
        self.add(kind, url, tracker=tracker)
        return html.escape(url)

    def raw_text_load(self, url, kind="remote", tracker=None, note=None):
        """A load inside raw text (a <style> block): entities are not decoded there, so the URL
        a client requests is the escaped text as written, and that is what is registered."""
        self.add(kind, html.escape(url), tracker=tracker, note=note)
        return html.escape(url)

    def a(self, url, text, tracker=None, dest=None, attrs=""):
        """tracker given => a wrapped/tracked link; otherwise a plain link."""
        if tracker is not None:
            self.add("link", url, tracker=tracker, destination=dest)
            if dest:
                self._dest_params(dest)
        else:
            self._dest_params(url)
        return f'<a href="{html.escape(url)}" {attrs}>{text}</a>'.replace(" >", ">")

    def t(self, url, tracker=None, dest=None):
        """A URL written in the text/plain part."""
        if tracker is not None:
            self.add("link", url, tracker=tracker, destination=dest)
            if dest:
                self._dest_params(dest)
        else:
            self._dest_params(url)
        return url

    def receipt(self, header, value):
        self.headers.append((header, value))
        self.add("receipt", header=header)

    @property
    def tracking(self):
        if self.tracking_override is not None:
            return self.tracking_override
        return any(f["kind"] in ("pixel", "link", "param", "receipt") for f in self.findings)

    # ---- MIME
    def _cs(self, enc):
        cs = Charset(self.charset)
        cs.body_encoding = {"qp": QP, "b64": BASE64, "8bit": None}[enc]
        if enc == "8bit":
            cs.body_encoding = None
        return cs

    def part(self, body, subtype, enc=None):
        enc = enc or self.enc
        return MIMEText(body, subtype, self._cs(enc))

    def build(self, text=None, htmlbody=None, related=(), attachments=(), top=None):
        parts = []
        if text is not None and htmlbody is not None:
            alt = MIMEMultipart("alternative")
            alt.attach(self.part(text, "plain", self.text_enc))
            alt.attach(self.part(htmlbody, "html"))
            body = alt
        elif htmlbody is not None:
            body = self.part(htmlbody, "html")
        else:
            body = self.part(text, "plain", self.text_enc)
        if related:
            rel = MIMEMultipart("related")
            rel.attach(body)
            for cid, data, sub in related:
                im = MIMEImage(data, sub)
                im.add_header("Content-ID", f"<{cid}>")
                im.add_header("Content-Disposition", "inline")
                rel.attach(im)
            body = rel
        if attachments:
            mix = MIMEMultipart("mixed")
            mix.attach(body)
            for fname, data, maintype, sub in attachments:
                at = MIMEApplication(data, sub) if maintype == "application" else MIMEText(data.decode(), sub)
                at.add_header("Content-Disposition", "attachment", filename=fname)
                mix.attach(at)
            body = mix
        m = body
        m["From"] = self.frm
        m["To"] = RCPT
        m["Subject"] = self.subject
        tz = datetime.timezone(datetime.timedelta(hours=self.tz))
        m["Date"] = format_datetime(self.date.astimezone(tz))
        dom = re.search(r"@([^>]+)>?$", self.frm).group(1)
        m["Message-ID"] = make_msgid(idstring=lower(10), domain=dom)
        if "MIME-Version" not in m:
            m["MIME-Version"] = "1.0"
        for k, v in self.headers:
            m[k] = v
        # move MIME headers after the envelope-ish ones for realism
        for k in ("MIME-Version", "Content-Type", "Content-Transfer-Encoding"):
            vals = m.get_all(k)
            if vals:
                del m[k]
                for v in vals:
                    m[k] = v
        self.mime = m
        return m

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")

def page(title, body, preheader="", style="", lang="en", head_extra=""):
    pre = (f'<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">{preheader}'
           + "&#8199;&#65279;&#847; " * 6 + "</div>\n") if preheader else ""
    return f"""<!DOCTYPE html>
<html lang="{lang}" xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="x-apple-disable-message-reformatting">
<title>{title}</title>
<style>
body{{margin:0;padding:0;background:#f3f4f6}} table{{border-collapse:collapse}} img{{border:0;display:block}}
a{{color:#1d4ed8}} .wrap{{width:600px}} @media (max-width:620px){{.wrap{{width:100%!important}}}}
{style}
</style>
{head_extra}</head>
<body style="margin:0;padding:0;background:#f3f4f6">
{pre}<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" bgcolor="#f3f4f6"><tr><td align="center" style="padding:24px 8px">
<table role="presentation" class="wrap" width="600" cellpadding="0" cellspacing="0" border="0" bgcolor="#ffffff">
{body}
</table>
</td></tr></table>
</body>
</html>
"""

def row(inner, pad="16px 28px", extra=""):
    return f'<tr><td style="padding:{pad};font-family:Helvetica,Arial,sans-serif;font-size:15px;line-height:22px;color:#1f2937"{extra}>{inner}</td></tr>\n'

def button(link_html):
    return (f'<table role="presentation" cellpadding="0" cellspacing="0" border="0"><tr>'
            f'<td bgcolor="#1d4ed8" style="border-radius:4px;padding:10px 18px">{link_html}</td></tr></table>')


# ---- the corpus being built

MSGS = []  # every message built so far, in build order (build_corpus.py writes them)


def reset():
    """Start a build from scratch: an empty list and the seeded generator at its start."""
    MSGS.clear()
    R.seed(SEED)


def reg(m, **build):
    m.build(**build); MSGS.append(m); return m


# ---- the newsletter template most builders fill in

def nl(m, cdn, title, pre, items, link_fn, pixel="", intro="", style="", footer=None, head_extra="", after_rows="", logo=True, lang="en", text=True, img_attrs='width="544" height="272" style="width:100%;height:auto"'):
    rows = []
    tl = [title, "=" * len(title), "", intro, ""] if text else None
    if logo:
        rows.append(row(m.img(f"https://{cdn}/logo.png", attrs='width="160" height="48"', alt=title.split(":")[0]), pad="24px 28px 8px"))
    if intro:
        rows.append(row(f"<p>{intro}</p>"))
    for slug, head, para, dest in items:
        u, trk, d = link_fn(dest)
        img = m.img(f"https://{cdn}/{slug}.jpg", attrs=img_attrs, alt=head) if slug else ""
        rows.append(row(f'{img}<h2 style="font-size:20px;margin:16px 0 6px">{head}</h2><p style="margin:0 0 12px">{para}</p>'
                        + button(m.a(u, "Read more", trk, d, 'style="color:#ffffff;text-decoration:none"'))))
        if text:
            tl += [head, para, "-> " + m.t(u, trk, d), ""]
    foot = []
    for label, dest in (footer or []):
        u, trk, d = link_fn(dest)
        foot.append(m.a(u, label, trk, d, 'style="color:#6b7280"'))
        if text:
            tl.append(f"{label}: " + m.t(u, trk, d))
    rows.append(after_rows)
    rows.append(row(" &middot; ".join(foot) + f"<br>{title.split(':')[0]}, 12 Harbour Road, Portsmouth PO1 2AB", pad="20px 28px",
                    extra=' align="center" style="font-size:12px;color:#6b7280"'))
    rows.append(pixel)
    return page(title, "".join(rows), pre, style=style, head_extra=head_extra, lang=lang), ("\n".join(tl) + "\n" if text else None)

PLAIN = lambda dest: (dest, None, None)
