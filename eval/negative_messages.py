"""Tracking-free hard negatives (file names start with neg-): personal mail in several charsets,
mailing lists, transactional mail, newsletters with content images only, near-miss URLs.
`build()` builds them in corpus order (last)."""
import base64
import re

from lib import GIF, PLAIN, PNG, Msg, R, alnum, button, digits, nl, page, reg, row, uuid

# ================================================================ TRACKING-FREE (hard negatives)
NEG_EV = "Tracking-free control written for false-positive measurement; structure modelled on ordinary personal, list and transactional mail"

def neg_plain(name, desc, frm, subj, body, charset="utf-8", enc="8bit", headers=(), ev=NEG_EV):
    m = Msg(name, desc, ev, frm, subj, tracking=False, charset=charset, enc=enc, headers=headers)
    for u in re.findall(r"https?://[^\s>)\]]+", body):
        m.t(u)
    reg(m, text=body)
    return m

# --- mailing lists (GNU Mailman / Google Groups / Discourse-like)
ML = [("gardening", "Hollow Lane allotment list", "Re: shared shredder booking", "I've put the shredder back in shed 4. The booking sheet is at https://hollowlane-allotments.example/shredder"),
      ("pgsql-general", "PostgreSQL general discussion", "Re: vacuum not reclaiming space", "Check for long-running transactions first; see https://www.postgresql.org/docs/current/routine-vacuuming.html"),
      ("cycling-club", "Westbay Wheelers", "Sunday ride: café stop change", "The café at Ferry Point is shut, we'll stop at the kiosk instead. GPX: https://westbaywheelers.example/routes/ferry-loop.gpx")]

def googlegroup(name, group, subj, para):
    m = Msg(name, f"Google Groups post ({group}) in HTML+text with the standard footer; plain groups.google.com links", NEG_EV,
            f'"Group member" <member@{group}.example>', f"Re: {subj}", tracking=False, enc="qp",
            headers=[("List-ID", f"<{group}.googlegroups.com>"), ("Mailing-list", f"list {group}@googlegroups.com; contact {group}+owners@googlegroups.com"),
                     ("List-Unsubscribe", f"<mailto:googlegroups-manage+{digits(12)}+unsubscribe@googlegroups.com>, <https://groups.google.com/g/{group}/subscribe>")])
    msgid = f"https://groups.google.com/d/msgid/{group}/{uuid()}n%40googlegroups.com"
    foot_t = (f"\n-- \nYou received this message because you are subscribed to the Google Groups \"{group}\" group.\nTo unsubscribe from this group and stop receiving emails from it, send an email to {group}+unsubscribe@googlegroups.com.\n"
              f"To view this discussion visit {m.t(msgid)}.\n")
    h = (f'<div dir="ltr">{para}</div>\n<p></p>\n-- <br>You received this message because you are subscribed to the Google Groups "{group}" group.<br>'
         f'To unsubscribe from this group and stop receiving emails from it, send an email to <a href="mailto:{group}+unsubscribe@googlegroups.com">{group}+unsubscribe@googlegroups.com</a>.<br>'
         f'To view this discussion visit {m.a(msgid + "?utm_medium=email&utm_source=footer" if False else msgid, msgid)}.<br>')
    reg(m, text=para + "\n" + foot_t, htmlbody=h)

# --- transactional without trackers
def neg_html(name, desc, frm, subj, build_body, enc="qp", charset="utf-8", headers=(), related=(), attachments=(), text=None, style="", head_extra="", pre=""):
    m = Msg(name, desc, NEG_EV, frm, subj, tracking=False, enc=enc, charset=charset, headers=headers)
    body = build_body(m)
    h = page(subj, body, pre, style=style(m) if callable(style) else style, head_extra=head_extra(m) if callable(head_extra) else head_extra)
    t = text(m) if callable(text) else text
    reg(m, text=t, htmlbody=h, related=related, attachments=attachments)
    return m
def calendar(m):
    return row("Dentist check-up<br>Thursday 12 September, 09:30–10:00<br>" + m.a("https://www.openstreetmap.org/?mlat=50.8&mlon=-1.09", "Map"))
ics = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:7f3c@smilecare.example\r\nDTSTART:20240912T083000Z\r\nDTEND:20240912T090000Z\r\nSUMMARY:Dentist check-up\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

# --- newsletters with content images only
SOCIAL = [("facebook", "https://www.facebook.com/{b}"), ("instagram", "https://www.instagram.com/{b}/"), ("youtube", "https://www.youtube.com/@{b}")]
def socials(m, b, cdn="https://cdn.tools.unlayer.com/social/icons/circle-black"):
    return row(" ".join(m.a(u.format(b=b), m.img(f"{cdn}/{n}.png", attrs='width="32" height="32"', alt=n)) for n, u in SOCIAL), extra=' align="center"')

NL = [
 ("neg-newsletter-bookshop-srcset.eml", "Bookshop newsletter: srcset 1x/2x candidates (each a remote load), social icons from a CDN, plain links to big platforms",
  '"Harbour Books" <news@harbourbooks.example>', "New in: autumn fiction", "harbourbooks", "srcset"),
 ("neg-newsletter-mobile-hidden-block.eml", "Newsletter with a desktop hero and a mobile-only block hidden by display:none containing sized content images (remote, not tracking)",
  '"Tidewater Ferries" <news@tidewaterferries.example>', "Winter timetable is out", "tidewaterferries", "mobile"),
 ("neg-newsletter-divider-and-spacer.eml", "Newsletter using 560x1 divider images and spacer.gif / clear.gif layout images without a query string (remote, not pixels)",
  '"Oak & Iron Woodworks" <hello@oakiron.example>', "Workshop dates for October", "oakiron", "spacer"),
 ("neg-newsletter-webfont-bg.eml", "Newsletter loading a Google Fonts stylesheet, a CSS background hero and content images (remote loads only)",
  '"Lumen Theatre" <boxoffice@lumentheatre.example>', "On stage this autumn", "lumentheatre", "font"),
 ("neg-newsletter-near-miss-params.eml", "Newsletter whose links carry non-tracking parameters (?ref=, ?source=, ?page=, ?id=) — no tracking-parameter families",
  '"Cinder Press" <letters@cinderpress.example>', "Letters from the press, no. 31", "cinderpress", "params"),
 ("neg-newsletter-youtube-vimeo.eml", "Newsletter with video thumbnails from i.ytimg.com / vumbnail linking to plain youtube.com/watch and vimeo.com URLs",
  '"Fold & Stitch" <studio@foldstitch.example>', "Three new tutorials", "foldstitch", "video"),
 ("neg-newsletter-cid-and-remote.eml", "Newsletter mixing a cid: logo (related part) with remote content photos", '"Marsh Hill Farm" <farm@marshhill.example>', "Veg box: what's in this week", "marshhill", "cid"),
 ("neg-newsletter-8bit-latin1.eml", "German club newsletter in ISO-8859-1, 8bit transfer encoding, content images only", '"Turnverein Nordstadt" <info@tv-nordstadt.example>', "Neuigkeiten aus dem Verein", "tvnordstadt", "latin1"),
 ("neg-newsletter-picture-element.eml", "Newsletter using <picture><source srcset> art direction (every candidate a remote load)", '"Glasshouse Plants" <hello@glasshouse.example>', "Houseplants for low light", "glasshouse", "picture"),
 ("neg-newsletter-tiny-icons.eml", "Newsletter with 16x16 and 24x24 inline icons (small but not tiny) next to text", '"Trailhead Club" <club@trailhead.example>', "Route cards for autumn", "trailhead", "icons"),
]
def nl_neg(name, desc, frm, subj, b, kind):
    enc = {"latin1": "8bit"}.get(kind, R.choice(["qp", "b64"]))
    charset = "iso-8859-1" if kind == "latin1" else "utf-8"
    m = Msg(name, desc, NEG_EV, frm, subj, tracking=False, enc=enc, charset=charset,
            headers=[("List-Unsubscribe", f"<mailto:unsubscribe@{b}.example>")])
    host = f"{b}.example"; cdn = f"https://img.{b}.example/newsletter/2024-09"
    items = [(f"story{i}", h, p, f"https://{host}/{s}") for i, (h, p, s) in enumerate([
        ("This month", "What's new with us.", "news/2024-09"), ("Featured", "Our pick of the month.", "featured"), ("Visit us", "Opening hours and directions.", "visit")])]
    if kind == "latin1":
        items = [("verein", "Herbstfest", "Am 28. September ab 14 Uhr auf dem Sportplatz. Für Kuchen ist gesorgt.", f"https://{host}/herbstfest"),
                 ("kinder", "Kinderturnen", "Neue Gruppe für 4-6-Jährige, dienstags.", f"https://{host}/kinderturnen")]
    if kind == "params":
        items = [(f"s{i}", h, "", u) for i, (h, u) in enumerate([("Essay", f"https://{host}/essays/31?ref=letter"), ("Shop", f"https://{host}/shop?source=newsletter&page=2"), ("Archive", f"https://{host}/archive?id=31")])]
    extra, style, head_extra = "", "", ""
    if kind == "srcset":
        a1, a2, a3 = f"{cdn}/cover-400.jpg", f"{cdn}/cover-800.jpg", f"{cdn}/cover-1200.jpg"
        extra = row(f'<img src="{m.load(a1)}" srcset="{m.load(a1)} 400w, {m.load(a2)} 800w, {m.load(a3)} 1200w" sizes="(max-width:600px) 100vw, 544px" width="544" height="360" alt="Autumn fiction">')
    if kind == "mobile":
        extra = ('<!--[if !mso]><!--><tr><td><div class="mobile-only" style="display:none;max-height:0;overflow:hidden;mso-hide:all">'
                 + m.img(f"{cdn}/timetable-mobile-1.png", attrs='width="320" height="480"', alt="Timetable page 1")
                 + m.img(f"{cdn}/timetable-mobile-2.png", attrs='width="320" height="480"', alt="Timetable page 2")
                 + "</div></td></tr><!--<![endif]-->")
        style = "@media (max-width:600px){ .mobile-only{display:block!important;max-height:none!important} .desktop-only{display:none!important} }"
    if kind == "spacer":
        extra = (row(m.img(f"{cdn}/divider-560x1.png", attrs='width="560" height="1" style="display:block"'))
                 + row(m.img(f"https://{host}/images/spacer.gif", attrs='width="1" height="1"') + m.img(f"https://{host}/images/clear.gif", attrs='width="20" height="1"'))
                 + row(m.img(f"{cdn}/divider-560x1.png", attrs='width="560" height="1"')))
    if kind == "font":
        css = "https://fonts.googleapis.com/css2?family=Playfair+Display:wght@400;700&display=swap"
        head_extra = f'<link href="{m.load(css)}" rel="stylesheet" type="text/css">'
        extra = f'<tr><td background="{m.load(cdn + "/stage-hero.jpg")}" style="background-image:url(\'{m.load(cdn + "/stage-hero.jpg")}\');background-size:cover;height:260px;font-family:\'Playfair Display\',serif;color:#fff;padding:40px">On stage this autumn</td></tr>'
    if kind == "video":
        vids = [("dQ1x2Yz3AbC", "Pleated pouch"), ("Zk9pQw8LmN0", "Boxed corners")]
        extra = "".join(row(m.a(f"https://www.youtube.com/watch?v={v}", m.img(f"https://i.ytimg.com/vi/{v}/hqdefault.jpg", attrs='width="480" height="360"', alt=t))) for v, t in vids)
        extra += row(m.a("https://vimeo.com/912345678", m.img("https://vumbnail.com/912345678.jpg", attrs='width="480" height="270"', alt="Vimeo tutorial")))
    if kind == "cid":
        extra = row('<img src="cid:logo-marshhill@farm" width="140" height="60" alt="Marsh Hill Farm">')
    if kind == "picture":
        s1, s2, f0 = f"{cdn}/ferns-mobile.webp", f"{cdn}/ferns-desktop.webp", f"{cdn}/ferns.jpg"
        extra = row(f'<picture><source media="(max-width:600px)" srcset="{m.load(s1)}"><source srcset="{m.load(s2)}"><img src="{m.load(f0)}" width="544" height="300" alt="Ferns"></picture>')
    if kind == "icons":
        extra = row(m.img(f"{cdn}/icons/pin-16.png", attrs='width="16" height="16"', alt="") + " Meeting point: Old Quarry car park<br>"
                    + m.img(f"{cdn}/icons/clock-24.png", attrs='width="24" height="24"', alt="") + " Start 09:00, 14 km")
    h, t = nl(m, cdn[8:], subj, "Our news for September" if kind != "latin1" else "Neuigkeiten", items, PLAIN, after_rows=extra + socials(m, b),
              footer=[("Unsubscribe", f"https://{host}/unsubscribe"), ("Privacy", f"https://{host}/privacy")], style=style, head_extra=head_extra,
              lang="de" if kind == "latin1" else "en")
    rel = [("logo-marshhill@farm", PNG, "png")] if kind == "cid" else ()
    reg(m, text=t, htmlbody=h, related=rel)


def vml_background(m):
    """Outlook's VML background (inside a conditional comment) and the same hero as a normal img."""
    html = ('<tr><td><!--[if gte mso 9]><v:rect xmlns:v="urn:schemas-microsoft-com:vml" fill="true" stroke="false" style="width:600px;height:300px"><v:fill type="frame" src="https://img.skylineclimbing.example/vml-only-hero.jpg"/></v:rect><![endif]-->'
            + m.img("https://img.skylineclimbing.example/hero-routes.jpg", attrs='width="600" height="300"', alt="New routes") + "</td></tr>" + row("Twelve new boulder problems on the cave wall."))
    # Outlook renders the conditional comment and loads the v:fill image: a remote load too
    m.add("remote", "https://img.skylineclimbing.example/vml-only-hero.jpg", comment=[
        "# Relabelled by the lead: Outlook renders <!--[if mso]> VML and loads its v:fill image, and",
        '# guard\'s definition of "remote" is every load a mail client would make, Outlook included.'])
    return html


def build():
    # --- personal plain text
    neg_plain("neg-personal-weekend-plans.eml", "Personal plain-text mail, UTF-8 8bit, one plain link", '"Maya Chen" <maya.chen@fastmail.example>', "Weekend?",
              "Hey Alex,\n\nAre we still on for the coast walk on Sunday? Forecast looks dry.\nRoute: https://www.openstreetmap.org/relation/9081711\n\nM.\n")
    neg_plain("neg-personal-latin1-qp.eml", "Personal plain-text mail in ISO-8859-1, quoted-printable, accents", '"Zoé Lefèvre" <zoe.lefevre@laposte.example>', "Dîner vendredi",
              "Salut Alex,\n\nOn se retrouve vendredi à 20h chez Hélène ? J'apporte le fromage.\n\nBises,\nZoé\n", charset="iso-8859-1", enc="qp")
    neg_plain("neg-personal-cp1252-quotes.eml", "Personal mail in windows-1252 with curly quotes and an en dash", '"Owen Hughes" <owen.hughes@outlook.example>', "Re: the “spare” bike",
              "Alex – yes, the bike’s still yours if you want it. It needs a new chain.\n\nOwen\n", charset="windows-1252", enc="qp")
    neg_plain("neg-personal-japanese-base64.eml", "Japanese personal mail, UTF-8 base64, no links", '"佐藤 花子" <hanako.sato@example.jp>', "来週の打ち合わせ",
              "アレックスさん\n\n来週の打ち合わせは火曜日の14時でいかがでしょうか。\nよろしくお願いします。\n\n佐藤\n", enc="b64")
    for lst, lname, subj, text in ML:
        body = (f"{text}\n\n-- \nSent from my laptop\n_______________________________________________\n{lname}\n{lst}@lists.example.org\n"
                f"https://lists.example.org/mailman/listinfo/{lst}\n")
        neg_plain(f"neg-mailman-{lst}.eml", f"GNU Mailman list post ({lname}): plain text with listinfo footer", f'"List member" <member.{lst}@example.com>', f"[{lst}] {subj}", body,
                  headers=[("List-Id", f"{lname} <{lst}.lists.example.org>"), ("List-Unsubscribe", f"<https://lists.example.org/mailman/options/{lst}>, <mailto:{lst}-request@lists.example.org?subject=unsubscribe>"),
                           ("List-Archive", f"<https://lists.example.org/pipermail/{lst}/>"), ("Precedence", "list"), ("X-Mailman-Version", "2.1.39")])
    neg_plain("neg-mailman-digest.eml", "GNU Mailman digest (plain text, several messages, archive links)", '"sailing-request@lists.example.org" <sailing-request@lists.example.org>', "sailing Digest, Vol 88, Issue 12",
              "Send sailing mailing list submissions to\n\tsailing@lists.example.org\n\nTo subscribe or unsubscribe via the World Wide Web, visit\n\thttps://lists.example.org/mailman/listinfo/sailing\n\n"
              "Today's Topics:\n\n   1. Mooring fees 2025 (Ruth)\n   2. Re: Mooring fees 2025 (Dev)\n\n----------------------------------------------------------------------\n\nMessage: 1\nDate: Mon, 2 Sep 2024 08:11:02 +0100\nFrom: Ruth\nSubject: Mooring fees 2025\n\n"
              "The committee minutes are at https://harbourclub.example/minutes/2024-08.pdf\n\n------------------------------\n\nMessage: 2\nFrom: Dev\n\nThanks Ruth.\n\nEnd of sailing Digest, Vol 88, Issue 12\n****************************************\n",
              headers=[("List-Id", "<sailing.lists.example.org>"), ("Precedence", "list")])
    googlegroup("neg-google-groups-astro.eml", "amateur-astro-se", "Perseids from the dark site", "Clear skies on Tuesday, meeting at the car park at 22:30.")
    googlegroup("neg-google-groups-r-users.eml", "rstats-bristol", "ggplot facet labels", "Use labeller = label_wrap_gen(width = 20) in facet_wrap().")
    neg_html("neg-order-confirmation-own-cdn.eml", "Shop order confirmation: logo and product photos from the shop's own CDN, plain order link, no trackers",
             '"Paper & Pine" <orders@paperpine.example>', "Order PP-40321 confirmed",
             lambda m: row(m.img("https://cdn.paperpine.example/email/logo.png", attrs='width="150" height="40"', alt="Paper & Pine"))
             + row(m.img("https://cdn.paperpine.example/products/notebook-a5-olive.jpg", attrs='width="120" height="120"', alt="A5 notebook") + "A5 dot-grid notebook, olive — £14.00")
             + row(m.img("https://cdn.paperpine.example/products/fountain-pen-ink.jpg", attrs='width="120" height="120"', alt="Ink") + "Bottled ink, blue-black — £9.50")
             + row("View your order: " + m.a("https://paperpine.example/account/orders/PP-40321", "PP-40321")),
             text=lambda m: "Order PP-40321 confirmed.\nView: " + m.t("https://paperpine.example/account/orders/PP-40321") + "\n")
    neg_html("neg-password-reset-no-images.eml", "Password reset mail without images; single plain link with a token parameter (not a tracking parameter)",
             '"Ledgerbook" <security@ledgerbook.example>', "Reset your password",
             lambda m: row("Someone asked to reset your password. " + button(m.a("https://app.ledgerbook.example/reset?token=" + alnum(40), "Reset password", attrs='style="color:#fff"')) + "<p>If this wasn't you, ignore this email.</p>"),
             enc="b64")
    neg_plain("neg-bank-alert-plain.eml", "Bank card alert, plain text only, no links", '"Harbour Savings" <alerts@harboursavings.example>', "Card payment of £23.40",
              "A payment of £23.40 to CORNER DELI was made with your card ending 4411 on 02/09/2024.\nIf you don't recognise it, call the number on the back of your card.\n")
    neg_plain("neg-ci-build-failed.eml", "CI notification in plain text with plain links to the build and commit", '"CI" <ci@builds.ferrule.example>', "[ferrule] Build #1921 failed on main",
              "Build #1921 failed on main (commit 3f2a9c1).\n\nFailed job: test (py3.12)\nLog: https://builds.ferrule.example/ferrule/jobs/1921/log\nCommit: https://git.ferrule.example/ferrule/commit/3f2a9c1\n")
    neg_html("neg-calendar-invite-ics.eml", "Appointment invitation with an .ics attachment and a plain map link", '"Smile Care" <appointments@smilecare.example>', "Invitation: Dentist check-up, Thu 12 Sep 09:30",
             calendar, attachments=[("invite.ics", ics, "text", "calendar")], text=lambda m: "Dentist check-up, Thu 12 Sep 09:30\nMap: " + m.t("https://www.openstreetmap.org/?mlat=50.8&mlon=-1.09") + "\n")
    neg_html("neg-shipping-notice-carrier-link.eml", "Shipping notice with a plain carrier tracking link (parcel 'tracking', not mail tracking) and a product image",
             '"Paper & Pine" <orders@paperpine.example>', "Your parcel is on its way",
             lambda m: row(m.img("https://cdn.paperpine.example/email/van.png", attrs='width="96" height="64"', alt="")
                           + "Your parcel is with the carrier. " + m.a("https://www.parcelcarrier.example/track?parcel=JD014600007441234567", "Track parcel JD0146…")),
             text=lambda m: "Track: " + m.t("https://www.parcelcarrier.example/track?parcel=JD014600007441234567") + "\n")
    neg_html("neg-apple-mail-cid-photo.eml", "Apple Mail message with an inline photo referenced by cid: (no remote loads)",
             '"Grandma June" <june.walters@icloud.example>', "Look who's walking!",
             lambda m: '<tr><td><div>Look who took her first steps today!</div><div><img src="cid:IMG_4412.jpeg@01DAF1" width="320" height="240" alt="IMG_4412.jpeg"></div><div>Love, June</div></td></tr>',
             related=[("IMG_4412.jpeg@01DAF1", GIF, "gif")], text="Look who took her first steps today!\n\nLove, June\n")
    neg_html("neg-data-uri-logo-receipt.eml", "Receipt whose logo and icons are data: URIs (no remote loads)",
             '"Corner Deli" <receipts@cornerdeli.example>', "Your receipt from Corner Deli",
             lambda m: row(f'<img src="data:image/png;base64,{base64.b64encode(PNG).decode()}" width="120" height="40" alt="Corner Deli">')
             + row("1x Flat white £3.20<br>1x Almond croissant £3.10<br><b>Total £6.30</b>"), text="1x Flat white 3.20\n1x Almond croissant 3.10\nTotal 6.30\n")
    neg_html("neg-thunderbird-html-links.eml", "Thunderbird HTML reply with plain links to Wikipedia and GitHub and a mailto/tel link",
             '"Ravi Iyer" <ravi.iyer@mailbox.example>', "Re: lighthouse trip",
             lambda m: '<tr><td><p>The lighthouse history is on ' + m.a("https://en.wikipedia.org/wiki/Eddystone_Lighthouse", "Wikipedia")
             + '. My photo script is ' + m.a("https://github.com/raviiyer/photo-sorter", "on GitHub") + '.</p><p>Call me: <a href="tel:+441234567890">01234 567890</a> or <a href="mailto:ravi.iyer@mailbox.example">email</a>.</p></td></tr>',
             text=lambda m: "History: " + m.t("https://en.wikipedia.org/wiki/Eddystone_Lighthouse") + "\nScript: " + m.t("https://github.com/raviiyer/photo-sorter") + "\n")
    for args in NL:
        nl_neg(*args)

    # --- more plain hard negatives: platform mail without trackers, near-miss URLs
    neg_html("neg-github-style-no-beacon.eml", "Self-hosted Gitea notification: plain links, avatar image from the forge, no beacon", '"Gitea" <gitea@code.tinkerspace.example>', "[tinkerspace/lights] Issue #88 closed",
             lambda m: row(m.img("https://code.tinkerspace.example/avatars/7f3b2c1d?size=40", attrs='width="40" height="40"', alt="avatar") + " <b>sam</b> closed "
                           + m.a("https://code.tinkerspace.example/tinkerspace/lights/issues/88", "#88 Flicker on channel 3")),
             text=lambda m: "sam closed #88: " + m.t("https://code.tinkerspace.example/tinkerspace/lights/issues/88") + "\n")
    neg_html("neg-near-miss-words-in-paths.eml", "Blog digest whose plain URLs contain words like track, open, click, pixel and redirect in their paths (but are ordinary pages/images)",
             '"Field Recording Weekly" <digest@fieldrecording.example>', "Digest: tracking birdsong and pixel art",
             lambda m: row(m.img("https://fieldrecording.example/img/track-listing-cover.jpg", attrs='width="300" height="300"', alt="Track listing"))
             + row("Read: " + m.a("https://fieldrecording.example/posts/tracking-birdsong-at-dawn", "Tracking birdsong at dawn") + "<br>"
                   + m.a("https://fieldrecording.example/open-call/2024", "Open call 2024") + "<br>"
                   + m.a("https://pixel-art-club.example/click-and-drag-tutorial", "Click-and-drag pixel art") + "<br>"
                   + m.a("https://fieldrecording.example/wiki/redirect-pages", "About our redirect pages")),
             text=lambda m: "\n".join(m.t(u) for u in ["https://fieldrecording.example/posts/tracking-birdsong-at-dawn", "https://fieldrecording.example/open-call/2024"]) + "\n")
    neg_html("neg-school-newsletter-pdf.eml", "Primary school newsletter with PDF attachment, one school logo and plain links", '"Seaview Primary" <office@seaview-primary.example>', "Newsletter 2 — September",
             lambda m: row(m.img("https://seaview-primary.example/images/crest.png", attrs='width="90" height="90"', alt="Seaview Primary")) + row("Please find this week's newsletter attached. Term dates: " + m.a("https://seaview-primary.example/term-dates", "term dates")),
             attachments=[("newsletter-2.pdf", b"%PDF-1.4\n%%EOF\n", "application", "pdf")], text=lambda m: "Newsletter attached. Term dates: " + m.t("https://seaview-primary.example/term-dates") + "\n")
    neg_html("neg-hidden-preheader-text-only.eml", "Newsletter with a hidden preheader (text only, no image inside) and normal content images", '"Bramble Bakery" <hello@bramblebakery.example>', "Pumpkin loaves are back",
             lambda m: row(m.img("https://bramblebakery.example/mail/pumpkin-loaf.jpg", attrs='width="544" height="300"', alt="Pumpkin loaf")) + row("Back every Friday until November."),
             pre="Pumpkin loaves, cinnamon knots and a new rye", text="Pumpkin loaves are back every Friday until November.\n")
    neg_html("neg-discourse-forum-digest.eml", "Discourse-style forum summary: avatars from the forum, plain topic links", '"Makers Forum" <noreply@forum.makers.example>', "[Makers Forum] Summary",
             lambda m: "".join(row(m.img(f"https://forum.makers.example/user_avatar/forum.makers.example/{u}/45/{digits(4)}_2.png", attrs='width="45" height="45"', alt=u) + " " + m.a(f"https://forum.makers.example/t/{s}/{digits(4)}", t))
                               for u, s, t in [("kit", "laser-cutter-rota", "Laser cutter rota"), ("dee", "resin-safety", "Resin safety notes"), ("olu", "open-evening", "Open evening 5 Oct")]),
             text="Summary of activity on Makers Forum.\n")
    neg_html("neg-utility-bill-ready.eml", "Utility e-bill notice with own-domain logo and a plain sign-in link", '"Northside Water" <bills@northsidewater.example>', "Your bill is ready",
             lambda m: row(m.img("https://www.northsidewater.example/static/email/logo-2x.png", attrs='width="180" height="50"', alt="Northside Water")) + row("Your bill of £38.12 is ready. " + m.a("https://my.northsidewater.example/bills/latest", "View bill")),
             text=lambda m: "Your bill of £38.12 is ready: " + m.t("https://my.northsidewater.example/bills/latest") + "\n", enc="b64")
    neg_html("neg-vml-comment-background.eml", "Newsletter with an Outlook VML background inside conditional comments (URLs in comments are not loads) and the same hero as a normal img",
             '"Skyline Climbing" <news@skylineclimbing.example>', "New routes set this week",
             vml_background,
             text="Twelve new boulder problems on the cave wall.\n")
    neg_plain("neg-plain-newsletter-text-only.eml", "Text-only indie newsletter with plain links (including to big platforms) and no tracking parameters", '"Small Hours" <hello@smallhours.example>', "Small Hours #54",
              "Small Hours #54\n\nThis week: a podcast about lighthouses, a playlist, and a recipe.\n\nPodcast: https://podcasts.apple.com/podcast/id1234567890\nPlaylist: https://open.spotify.com/playlist/37i9dQZF1DX4sWSpwq3LiO\nRecipe: https://smallhours.example/recipes/plum-cake\n\nReply to this email to say hi.\n")
    neg_plain("neg-forwarded-plain-with-signature-links.eml", "Forwarded plain-text mail with signature links to LinkedIn and a company site (no wrappers)", '"Ben Adeyemi" <ben.adeyemi@quarrystudio.example>', "Fwd: brief for the autumn campaign",
              "Alex, FYI below.\n\n---------- Forwarded message ---------\nFrom: Client <client@harbourbrand.example>\n\nBrief attached in the shared folder: https://drive.example.org/drive/folders/1aB2cD3eF4\n\n--\nBen Adeyemi | Quarry Studio\nhttps://quarrystudio.example | https://www.linkedin.com/in/benadeyemi\n")
    neg_html("neg-flight-itinerary-static-map.eml", "Airline itinerary: sized static-map image whose URL has a query string (content, not a pixel), airline logo, plain manage-booking link",
             '"Northwind Air" <itinerary@northwindair.example>', "Your trip to Lisbon — booking K7Q2LM",
             lambda m: row(m.img("https://www.northwindair.example/email/logo.png", attrs='width="140" height="36"', alt="Northwind Air"))
             + row(m.img("https://maps.northwindair.example/staticmap?center=38.77,-9.13&zoom=11&size=544x240&markers=LIS", attrs='width="544" height="240"', alt="Map of Lisbon airport"))
             + row("NW 318 · Thu 17 Oct · BRS 06:40 → LIS 09:35<br>" + m.a("https://www.northwindair.example/manage?pnr=K7Q2LM&lastname=Doe", "Manage booking")),
             text=lambda m: "NW 318 Thu 17 Oct BRS 06:40 -> LIS 09:35\nManage: " + m.t("https://www.northwindair.example/manage?pnr=K7Q2LM&lastname=Doe") + "\n")
    neg_html("neg-animated-banner-versioned.eml", "Club mail with an animated GIF banner carrying a cache-busting ?v= query and a table background attribute (content images only)",
             '"Harbour Swimmers" <club@harbourswimmers.example>', "Winter swim series starts Sunday",
             lambda m: f'<tr><td background="{m.load("https://harbourswimmers.example/img/waves-bg.png")}" style="padding:24px">'
             + m.img("https://harbourswimmers.example/img/winter-series.gif?v=3", attrs='width="544" height="180"', alt="Winter swim series") + "</td></tr>"
             + row("First swim Sunday 08:00 at the slipway. " + m.a("https://harbourswimmers.example/winter-series", "Details")),
             text=lambda m: "First swim Sunday 08:00. Details: " + m.t("https://harbourswimmers.example/winter-series") + "\n")
    neg_html("neg-event-rsvp-no-images.eml", "Community event RSVP confirmation in HTML without images; plain links to a map and a calendar file",
             '"Library Friends" <friends@citylibrary.example>', "You're going: Author talk, 3 October",
             lambda m: row("<p>Thanks for your RSVP to the author talk with Nell Hardy, 3 October 18:30.</p>" + m.a("https://citylibrary.example/events/nell-hardy.ics", "Add to calendar")
                           + " · " + m.a("https://www.openstreetmap.org/way/123456789", "Map")),
             text=lambda m: "Author talk 3 October 18:30\nCalendar: " + m.t("https://citylibrary.example/events/nell-hardy.ics") + "\n")
