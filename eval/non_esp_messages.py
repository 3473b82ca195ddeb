"""Tracking mail not sent through an ESP: sales and personal trackers (Mailtrack, Yesware, ...),
platforms and social networks, analytics and ads (Litmus, LiveIntent), security link wrappers,
heuristic and rule-gap pixels on self-hosted or unnamed services, and read-receipt requests.
`build()` builds them in corpus order (second, after esp_messages.py)."""
import re as _re

from lib import HEX, PLAIN, RCPT, Msg, R, alnum, b64, b64tok, digits, hexs, lower, nl, q, reg, row, uuid

def lowpct(s): return _re.sub(r'%[0-9A-F]{2}', lambda x: x.group(0).lower(), s)
# ================================================================ TRACKING: sales / personal trackers
def personal(m, greeting, body_lines, sig, pixel_html="", links=(), text_links=None):
    """Gmail-style one-to-one message. links: list of (label, url, tracker, dest)."""
    hl, tl = [], []
    for label, url, trk, dest in links:
        hl.append(m.a(url, label, trk, dest)); tl.append(f"{label}: {m.t(url, trk, dest)}")
    h = (f'<div dir="ltr"><div>{greeting}</div><div><br></div>' + "".join(f"<div>{l}</div>" for l in body_lines)
         + ("<div><br></div><div>" + "<br>".join(hl) + "</div>" if hl else "")
         + f'<div><br></div><div>{sig.replace(chr(10), "<br>")}</div>{pixel_html}</div>\n')
    t = f"{greeting}\n\n" + "\n".join(body_lines) + ("\n\n" + "\n".join(tl) if tl else "") + f"\n\n{sig}\n"
    return t, h

def mailtrack():
    m = Msg("mailtrack-freelance-invoice-followup.eml", "Gmail message tracked with Mailtrack: trace/mail/<40hex>.png pixel and trace/link ?url= link (decodable)",
            "easylist/easylist#3577 (<img src=\"https://mailtrack.io/trace/mail/c2573bfa8bb73e742debc407fd1839066611ea38.png?u=1003006\">, https://mailtrack.io/trace/link/<hash>?signature=...)",
            '"Marta Lindqvist" <marta.lindqvist@gmail.example>', "Re: invoice #0412", enc="qp")
    dest = "https://drive.example.org/file/d/1qX9v/invoice-0412.pdf"
    link = f"https://mailtrack.io/trace/link/{hexs(40)}?url={q(dest)}&userId={digits(7)}&signature={hexs(16)}"
    pix = m.img(f"https://mailtrack.io/trace/mail/{hexs(40)}.png?u={digits(7)}", "pixel", "Mailtrack", 'width="0" height="0" style="border:0;width:0;height:0;overflow:hidden"')
    t, h = personal(m, "Hi Alex,", ["Just following up on invoice #0412 from last month.", "Could you confirm it's in the payment run?"], "Thanks,\nMarta", pix,
                    [("Invoice PDF", link, "Mailtrack", dest)])
    reg(m, text=t, htmlbody=h)

def yesware():
    m = Msg("yesware-recruiter-followup.eml", "Recruiter mail tracked with Yesware: t.yesware.com/t/.../spacer.gif pixel and ?ytl= link (decodable)",
            "simplify-trackers Yesware entries ('yesware.com\\/trk', 'yesware.com\\/t\\/', 't.yesware.com'); MailTrackerBlocker YesWare list",
            '"Priya Nandakumar" <priya@talentbridge.example>', "Following up: Senior Data Engineer role", enc="qp")
    dest = "https://careers.talentbridge.example/jobs/senior-data-engineer"
    a, b = hexs(40), hexs(32)
    link = f"https://t.yesware.com/tl/{a}/{b}/{hexs(32)}?ytl={q(dest)}"
    pix = m.img(f"https://t.yesware.com/t/{a}/{b}/spacer.gif", "pixel", "Yesware", 'style="border:0;width:0;height:0;overflow:hidden" width="0" height="0"')
    t, h = personal(m, "Hi Alex,", ["Circling back on the role I mentioned last week.", "Happy to share the salary band on a quick call."], "Priya Nandakumar\nTalentBridge", pix,
                    [("Job description", link, "Yesware", dest)])
    reg(m, text=t, htmlbody=h)

def streak():
    m = Msg("streak-partnership-note.eml", "Gmail message tracked with Streak: mailfoogae.appspot.com/t? pixel",
            "simplify-trackers and MailTrackerBlocker Streak entry 'mailfoogae.appspot.com'",
            '"Tomás Ferreira" <tomas@brightharbor.example>', "Partnership idea", enc="qp")
    pix = m.img(f"https://mailfoogae.appspot.com/t?sender={b64('tomas@brightharbor.example').rstrip('=')}&type=zerocontent&guid={uuid()}", "pixel", "Streak", 'width="0" height="0"')
    t, h = personal(m, "Hi Alex,", ["Loved your talk at the meetup. Would you be open to co-hosting a workshop in November?"], "Cheers,\nTomás", pix,
                    [("Our previous workshop", "https://brightharbor.example/workshops/2024-spring", None, None)])
    reg(m, text=t, htmlbody=h)

def superhuman():
    m = Msg("superhuman-intro-thread.eml", "Reply sent from Superhuman with read status: r.superhuman.com/<token>.gif pixel (no size attributes)",
            "trockerapp/trocker#11 comment (Superhuman read receipt pixel '||r.superhuman.com/*.gif'); simplify-trackers 'r.superhuman.com'",
            '"Jonah Kessler" <jonah@kessler.vc.example>', "Re: intro — Alex <> Maya", enc="qp")
    pix = m.img(f"https://r.superhuman.com/{b64tok(48)}.gif", "pixel", "Superhuman", 'style="width:0;height:0;border:0"')
    t, h = personal(m, "Thanks Maya (moving to bcc).", ["Alex — great to meet. Does Thursday 3pm work for a call?"], "Jonah", pix)
    reg(m, text=t, htmlbody=h)

def hunter():
    m = Msg("hunter-mailtracker-cold-pitch.eml", "Cold pitch tracked with Hunter's MailTracker: gs-mailtracker.com/pixel/<id>?rid= 1x1 pixel",
            "OneClickLab/ugly-email-trackers#49 (MailTracker by hunter sample: <img src=\"https://gs-mailtracker.com/pixel/gTxaEoDFPZAaP3PduCUV?rid=gTxaEoDFPZAaP3PduCUV\" width=\"1\" height=\"1\">)",
            '"Leo Brandt" <leo@brandtstudio.example>', "Website refresh for your team?", enc="qp")
    r = alnum(20)
    pix = m.img(f"https://gs-mailtracker.com/pixel/{r}?rid={r}", "pixel", "Hunter Mailtracker", 'width="1" height="1" border="0"')
    t, h = personal(m, "Hello Alex,", ["We redesign B2B sites in six weeks. Portfolio below."], "Leo Brandt\nBrandt Studio", pix,
                    [("Portfolio", "https://brandtstudio.example/work", None, None)])
    reg(m, text=t, htmlbody=h)

def outreach():
    m = Msg("outreach-sequence-step2.eml", "Sales sequence sent through Outreach: outrch.com/api/mailings/opened pixel",
            "MailTrackerBlocker Outreach entries ('outrch.com/api/mailings/opened', 'getoutreach.com/api/mailings/opened'); simplify-trackers Outreach.io",
            '"Sam Okoro" <sam.okoro@fleetline.example>', "Re: fleet telematics for Q4", enc="b64")
    tok = "".join(R.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(120))
    pix = m.img(f"https://app.outrch.com/api/mailings/opened/{tok}.gif", "pixel", "Outreach", 'alt="" style="display:none" height="1" width="1"')
    t, h = personal(m, "Hi Alex,", ["Bumping this up — we cut fuel spend 12% for a fleet your size."], "Sam Okoro\nFleetline", pix,
                    [("Case study", "https://fleetline.example/case-studies/harbour-logistics", None, None)])
    reg(m, text=t, htmlbody=h)

# ================================================================ TRACKING: platforms / social
def linkedin():
    m = Msg("linkedin-profile-views.eml", "LinkedIn notification: /emimp/ip_<b64>.gif open pixel (1px by CSS); plain linkedin.com/comm links with trk/midToken (not tracking params here)",
            "Public LinkedIn mail HTML in GitHub code: <img src=\"http://www.linkedin.com/emimp/1b3p5-inqenmmy-ir.gif\" style=\"...width:1px;height:1px;\"> and https://www.linkedin.com/emimp/ip_<base64>.gif (find_string 'linkedin.com/emimp/')",
            '"LinkedIn" <notifications-noreply@linkedin.com>', "Alex, your profile was viewed by 4 people", enc="qp")
    mt = "AQH" + b64tok(40)
    items = [("", "4 people viewed your profile", "See who's looking.", f"https://www.linkedin.com/comm/me/profile-views?midToken={mt}&midSig={b64tok(20)}&trk=eml-email_notification_single_mentioned_you_01-hero-0-view_profile&trkEmail=eml-email_profile_views-{b64tok(10)}&lipi=urn%3Ali%3Apage%3Aemail_email_profile_views%3B{b64tok(22)}%3D%3D"),
             ("", "Jobs you may be interested in", "", f"https://www.linkedin.com/comm/jobs/collections/recommended?midToken={mt}&trk=eml-jobs")]
    pix = f'<img src="{m.load("https://www.linkedin.com/emimp/ip_" + b64(alnum(30) + ":" + alnum(30)) + ".gif", "pixel", "LinkedIn")}" style="outline:none;-ms-interpolation-mode:bicubic;color:#FFFFFF;text-decoration:none;width:1px;height:1px;" alt="">'
    h, t = nl(m, "static.licdn.com/aero-v1/sc/h", "LinkedIn: profile views", "", items, PLAIN, pixel=pix, footer=[("Unsubscribe", f"https://www.linkedin.com/comm/psettings/email-unsubscribe?midToken={mt}")], img_attrs='width="48" height="48"')
    reg(m, text=t, htmlbody=h)

def facebook():
    m = Msg("facebook-group-post-digest.eml", "Facebook notification: email_open_log_pic.php?mid= pixel (1px CSS) and l.facebook.com/l.php?u= link shim (decodable)",
            "Public Facebook mail HTML in GitHub code: <img src=\"https://www.facebook.com/email_open_log_pic.php?mid=5bb6aabbe99b2G5afc4682afaaG5bb6af5549c84G178\" style=\"border:0;width:1px;height:1px\"> (find_string 'email_open_log_pic.php?mid=')",
            '"Facebook" <notification@facebookmail.com>', "New post in Riverside Allotments", enc="qp")
    dest = "https://riverside-allotments.example/news/water-troughs"
    shim = f"https://l.facebook.com/l.php?u={q(dest)}&h=AT{b64tok(60)}&s=1"
    items = [("", "Riverside Allotments", "Jo shared a link: Water troughs are being replaced next week.", f"https://www.facebook.com/groups/{digits(15)}/permalink/{digits(16)}/")]
    pix = f'<span><img src="{m.load("https://www.facebook.com/email_open_log_pic.php?mid=" + hexs(13) + "G" + hexs(12) + "G" + hexs(13) + "G" + hexs(3), "pixel", "Facebook")}" style="border:0;width:1px;height:1px"></span>'
    extra = row("Shared link: " + m.a(shim, dest.split("//")[1], "Facebook", dest))
    h, t = nl(m, "static.xx.fbcdn.net/rsrc.php/v3", "Facebook: new group post", "", items, PLAIN, pixel=pix, after_rows=extra, logo=False)
    reg(m, text=t, htmlbody=h)

def github():
    m = Msg("github-pr-review-comment.eml", "GitHub notification: notifications/beacon/<token>.gif 1x1 pixel; plain github.com links",
            "GitHub notification mails archived in public repos: <img alt=\"\" height=\"1\" src=\"https://github.com/notifications/beacon/AZR1R0GZ...gif\" width=\"1\"> (find_string 'github.com/notifications/beacon/')",
            '"Kim Tran" <notifications@github.com>', "Re: [ferrule/ferrule] Handle empty config files (PR #412)", enc="qp",
            headers=[("List-ID", "ferrule/ferrule <ferrule.ferrule.github.com>"), ("X-GitHub-Reason", "review_requested")])
    h = ('<p><b>@kimtran</b> commented on this pull request.</p><blockquote>Looks good, one nit: please add a test for a file with only comments.</blockquote>'
         f'<p>— Reply to this email directly, {m.a("https://github.com/ferrule/ferrule/pull/412#discussion_r1749" + digits(6), "view it on GitHub")}, or '
         f'{m.a("https://github.com/notifications/unsubscribe-auth/A" + alnum(25), "unsubscribe")}.<br>You are receiving this because your review was requested.'
         + m.img("https://github.com/notifications/beacon/A" + alnum(40) + ".gif", "pixel", "GitHub", 'height="1" width="1"') + '</p>')
    t = "@kimtran commented on this pull request.\n\n> Looks good, one nit: please add a test for a file with only comments.\n\n-- \nReply to this email directly or view it on GitHub.\n"
    reg(m, text=t, htmlbody=h)

def twitter():
    m = Msg("x-twitter-highlights.eml", "X (Twitter) highlights mail: twitter.com/scribe/ibis open pixel and i/redirect?url= links (decodable)",
            "MailTrackerBlocker Twitter entry 'twitter.com/scribe/ibis'; trockerapp/trocker#11 blocklist ('twitter.com/scribe')",
            '"X" <info@x.com>', "Highlights from people you follow", enc="qp")
    cn = b64(alnum(40)); iid = hexs(32); uid = digits(10)
    def T(dest): return (f"https://twitter.com/i/redirect?url={q(dest)}&t=1&cn={q(cn)}&sig={hexs(40)}&iid={iid}&uid={uid}&nid=244+{digits(5)}", "X (Twitter)", dest)
    items = [("", "@harbourtrains", "Night trains are back on the coast line from October.", "https://twitter.com/harbourtrains/status/" + digits(19)),
             ("", "@cityarchive", "Photos from 1962: the old market hall.", "https://twitter.com/cityarchive/status/" + digits(19))]
    pix = row(m.img(f"https://twitter.com/scribe/ibis?t=1&cn={q(cn)}&iid={iid}&uid={uid}&nid=244+{digits(5)}", "pixel", "X (Twitter)", 'width="1" height="1" alt=""'))
    h, t = nl(m, "ton.twimg.com/email/x", "X: highlights", "", items, T, pixel=pix, img_attrs='width="48" height="48"')
    reg(m, text=t, htmlbody=h)

def netflix():
    m = Msg("netflix-new-arrivals.eml", "Netflix new-arrivals mail: beaconimages.netflix.net/img/<token> beacon with no size attributes",
            "apparition47/MailTrackerBlocker#89 (<img src=\"https://beaconimages.netflix.net/img/BAQgBEAEa4AJ2...\" style=\"display:block;...\" border=\"0\">, no width/height)",
            '"Netflix" <info@mailer.netflix.com>', "New on Netflix this week", enc="qp")
    items = [("show1", "The Lighthouse Keepers", "A new drama series.", "https://www.netflix.com/title/" + digits(8)), ("show2", "Coastal Kitchens", "Season 2 is here.", "https://www.netflix.com/title/" + digits(8))]
    pix = row(f'<img src="{m.load("https://beaconimages.netflix.net/img/BAQgBEAEa4AJ" + b64tok(300), "pixel", "Netflix")}" style="display:block;-ms-interpolation-mode:bicubic;border:none;outline:none;border-collapse:collapse;" border="0">')
    h, t = nl(m, "assets.nflxext.com/us/email/gem", "Netflix: new this week", "", items, PLAIN, pixel=pix, footer=[("Notification settings", "https://www.netflix.com/EmailPreferences")])
    reg(m, text=t, htmlbody=h)

def reddit():
    m = Msg("reddit-trending-digest.eml", "Reddit digest sent through Amazon SES on click.redditmail.com: /CI0/ hidden 1px pixel, /CL0/ links (decodable) whose targets carry UTM",
            "apparition47/MailTrackerBlocker#139 (<img src=\"http://click.redditmail.com/CI0/0100017c...-000000/Po3P...=215\" style=\"display: none; width: 1px; height: 1px;\">); MailTrackerBlocker lists '/CI0/' under Amazon SES",
            '"Reddit" <noreply@redditmail.com>', "\"Found this in my grandad's shed\" | r/whatisthisthing", enc="qp")
    mid = f"0100018f{hexs(8)}-{uuid()}-000000"
    def L(dest):
        return (f"https://click.redditmail.com/CL0/{q(dest, safe=':=').replace('%3D','=')}/1/{mid}/{b64tok(43)}={R.randint(200,400)}", "Amazon SES", dest)
    items = [("", "Found this in my grandad's shed", "r/whatisthisthing · 2.1k upvotes", "https://www.reddit.com/r/whatisthisthing/comments/1f" + lower(5) + "/?$deep_link=true&correlation_id=" + uuid() + "&utm_medium=Email&utm_name=top_posts&utm_source=email&utm_term=day"),
             ("", "Tiny home build update", "r/TinyHouses · 870 upvotes", "https://www.reddit.com/r/TinyHouses/comments/1f" + lower(5) + "/?utm_medium=Email&utm_source=email")]
    pix = f'<img alt="" src="{m.load(f"http://click.redditmail.com/CI0/{mid}/{b64tok(43)}={R.randint(200,400)}", "pixel", "Amazon SES")}" style="display: none; width: 1px; height: 1px;">'
    h, t = nl(m, "www.redditstatic.com/emaildigest", "Reddit: trending", "", items, L, pixel=pix, logo=False)
    reg(m, text=t, htmlbody=h)

def google_alerts():
    m = Msg("google-alert-heat-pumps.eml", "Google Alert: www.google.com/url?rct=j&sa=t&url= redirect links (decodable) in HTML and text",
            "Public code quoting Google Alert links https://www.google.com/url?rct=j&sa=t&url=https://...&ct=ga&cd=...&usg=... (find_string 'google.com/url?rct=j&sa=t&url=')",
            '"Google Alerts" <googlealerts-noreply@google.com>', "Google Alert - heat pumps", enc="qp")
    def G(dest):
        if dest.startswith("https://www.google.com/alerts"): return (dest, None, None)
        return (f"https://www.google.com/url?rct=j&sa=t&url={dest}&ct=ga&cd=CAEYACoT{b64tok(26)}&usg=AOvVaw{b64tok(22)}", "Google redirect", dest)
    items = [("", "Heat pump grants extended to 2026", "Local news", "https://news.coastal-times.example/2024/09/heat-pump-grants"),
             ("", "How quiet are modern heat pumps?", "Consumer magazine", "https://magazine.example.org/tests/heat-pump-noise")]
    h, t = nl(m, "www.gstatic.com/alerts", "Google Alerts: heat pumps", "", items, G, logo=False, footer=[("Edit this alert", "https://www.google.com/alerts?source=alertsmail&hl=en&gl=US&msgid=" + digits(18))])
    reg(m, text=t, htmlbody=h)

def quora():
    m = Msg("quora-digest.eml", "Quora digest: quora.com/qemail/mark_read open pixel",
            "simplify-trackers and MailTrackerBlocker Quora entry 'quora.com/qemail/mark_read'",
            '"Quora Digest" <english-personalized-digest@quora.com>', "Why do old trains sound different?", enc="qp")
    items = [("", "Why do old trains sound different?", "Answer from a former signal engineer.", "https://www.quora.com/Why-do-old-trains-sound-different"), ("", "Is sourdough healthier?", "", "https://www.quora.com/Is-sourdough-healthier")]
    pix = row(m.img(f"https://www.quora.com/qemail/mark_read?ct={digits(16)}&request_id={digits(5)}&source=1&uid={b64tok(11)}&v=0", "pixel", "Quora", 'width="1" height="1"'))
    h, t = nl(m, "qph.cf2.quoracdn.net/main-qimg", "Quora Digest", "", items, PLAIN, pixel=pix, logo=False)
    reg(m, text=t, htmlbody=h)

def eventbrite():
    m = Msg("eventbrite-order-reminder.eml", "Eventbrite reminder: eventbrite.com/emails/action open pixel",
            "simplify-trackers and MailTrackerBlocker EventBrite entry 'eventbrite.com/emails/action'",
            '"Eventbrite" <noreply@order.eventbrite.com>', "Reminder: Harbourside Makers Market is tomorrow", enc="b64")
    items = [("", "Harbourside Makers Market", "Saturday 10:00–16:00 · Pier 3", "https://www.eventbrite.com/e/harbourside-makers-market-tickets-" + digits(12)),
             ("", "Your tickets", "Order #" + digits(10), "https://www.eventbrite.com/mytickets/")]
    pix = row(m.img(f"https://www.eventbrite.com/emails/action/?recipient={q(RCPT)}&type_id=95&type=open&send_id={hexs(12)}&list_id={digits(6)}", "pixel", "Eventbrite", 'width="1" height="1" alt=""'))
    h, t = nl(m, "img.evbuc.com/email", "Eventbrite: reminder", "", items, PLAIN, pixel=pix)
    reg(m, text=t, htmlbody=h)

def trello():
    m = Msg("trello-card-activity.eml", "Trello activity mail: i.trellomail.com/e/eo?_t= open pixel",
            "Public code with https://i.trellomail.com/e/eo?_t=...&_m=...&_e=... (find_string '/e/eo?_t='); MailTrackerBlocker Atlassian 'i.trellomail.com/e/eo'",
            '"Trello" <do-not-reply@trello.com>', "2 new notifications on Kitchen renovation", enc="qp")
    items = [("", "Maya commented on “Order worktops”", "“Quote came back at £1,240.”", "https://trello.com/c/" + alnum(8) + "/14-order-worktops"),
             ("", "Card moved to Done", "“Book electrician”", "https://trello.com/c/" + alnum(8) + "/9-book-electrician")]
    pix = row(m.img(f"https://i.trellomail.com/e/eo?_t={hexs(32)}&_m={hexs(32)}&_e={b64tok(110)}", "pixel", "Trello", 'width="1" height="1" alt="" style="display:none"'))
    h, t = nl(m, "trello.com/images/email", "Trello: Kitchen renovation", "", items, PLAIN, pixel=pix, logo=False, footer=[("Notification settings", "https://trello.com/my/account")])
    reg(m, text=t, htmlbody=h)

def litmus():
    m = Msg("litmus-css-tracking-newsletter.eml", "Newsletter with Litmus Email Analytics: emltrk.com loads from a <style> block (print/Outlook selectors, CSS background) plus a 1x1 img",
            "MailTrackerBlocker (Litmus 'emltrk.com' listed among CSS trackers stripped from background-image url()); trockerapp/trocker#11 ('||emltrk.com^')",
            '"Fieldwork Coffee" <news@fieldworkcoffee.example>', "Origin trip diary: Huila", enc="qp")
    code = lower(10); base = f"https://{code}.emltrk.com/{code}"
    p, f, img = f"{base}?p&d={q(RCPT)}", f"{base}?f&d={q(RCPT)}", f"{base}?d={q(RCPT)}"
    raw = "<style> is raw text: no entity decoding, a browser requests &amp; as written"
    style = (f"@media print{{ #_two50 {{ background-image:url('{m.raw_text_load(p, 'pixel', 'Litmus', raw)}'); }} }}\n"
             f"div.OutlookMessageHeader {{ background-image:url('{m.raw_text_load(f, 'pixel', 'Litmus', '<style> is raw text (see above)')}') }}\n"
             f"table.moz-email-headers-table {{ background-image:url('{m.raw_text_load(f, 'pixel', 'Litmus')}') }}\n")
    pix = '<div id="_two50"></div>' + m.img(img, "pixel", "Litmus", 'width="1" height="1" border="0"')
    items = [("huila", "Huila diary", "Three farms, one washing station.", "https://fieldworkcoffee.example/journal/huila-2024"), ("", "New lot: Pink Bourbon", "", "https://fieldworkcoffee.example/shop/pink-bourbon")]
    h, t = nl(m, "fieldworkcoffee.example/email", "Fieldwork: Huila diary", "", items, PLAIN, pixel=pix, style=style)
    reg(m, text=t, htmlbody=h)

def liveintent():
    m = Msg("newsletter-liveintent-ad-slots.eml", "Self-sent local news daily with LiveIntent ad slots: /imp?s= impression images and /click?s= ad links on the publisher's li.* host",
            "apparition47/MailTrackerBlocker#93 (CNN mail: LiveIntent tracker) and MailTrackerBlocker LiveIntent rule '/imp\\?s=[0-9]{6}' with parameter notes 'imp?s=&li=&e=&p=&stpe='",
            '"Coastal Times Daily" <daily@coastal-times.example>', "Morning briefing: ferry timetable changes", enc="qp")
    e = hexs(32); p = digits(13)
    ads = ""
    for s in (digits(6), digits(6)):
        ads += row(m.a(f"https://li.coastal-times.example/click?s={s}&layout=marquee&li=daily_morning&e={e}&p={p}", m.img(f"https://li.coastal-times.example/imp?s={s}&layout=marquee&li=daily_morning&e={e}&p={p}&stpe=static", "pixel", "LiveIntent", 'width="300" height="250"'), "LiveIntent"), extra=' align="center"')
    items = [("ferry", "Ferry timetable changes", "Winter sailings start on 28 October.", "https://coastal-times.example/news/ferry-winter-2024"), ("", "Harbour wall repairs", "", "https://coastal-times.example/news/harbour-wall")]
    h, t = nl(m, "img.coastal-times.example/daily", "Coastal Times: morning briefing", "", items, PLAIN, after_rows=ads, footer=[("Unsubscribe", "https://coastal-times.example/newsletters")])
    reg(m, text=t, htmlbody=h)

# ================================================================ TRACKING: security wrappers
def fwd(m, intro, orig_from, orig_body_html, orig_body_text):
    h = (f'<div style="font-family:Calibri,Arial,sans-serif;font-size:11pt">{intro}<br><br>'
         f'<div style="border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0 0 0"><b>From:</b> {orig_from}<br><b>Sent:</b> Monday, 2 September 2024 09:12<br><b>Subject:</b> {m.subject.replace("FW: ","").replace("Fwd: ","")}</div><br>{orig_body_html}</div>')
    t = f"{intro}\n\n-----Original Message-----\nFrom: {orig_from}\n\n{orig_body_text}\n"
    return t, h

def safelinks():
    m = Msg("safelinks-supplier-price-list.eml", "Forwarded Outlook message with Microsoft Safe Links: nam12.safelinks url=&data=&sdata=&reserved=0 links (decodable) in HTML and text",
            "apparition47/MailTrackerBlocker#112 (https://nam10.safelinks.protection.outlook.com/?url=https%3A%2F%2Fgithub.com%2F...&data=04%7C01%7C...&sdata=...&reserved=0); aloneguid/bt#36",
            '"Rachel Owens" <r.owens@kestrel-logistics.example>', "FW: 2025 price list", enc="qp", headers=[("X-MS-Has-Attach", ""), ("Thread-Topic", "2025 price list")])
    def S(dest): return (f"https://nam12.safelinks.protection.outlook.com/?url={q(dest)}&data=05%7C02%7Cr.owens%40kestrel-logistics.example%7C{hexs(32)}%7C{hexs(32)}%7C0%7C0%7C{digits(18)}%7CUnknown%7CTWFpbGZsb3d8eyJFbXB0eU1hcGkiOnRydWUsIlYiOiIwLjAuMDAwMCIsIlAiOiJXaW4zMiIsIkFOIjoiTWFpbCIsIldUIjoyfQ%3D%3D%7C0%7C%7C%7C&sdata={q(b64tok(43)+'=')}&reserved=0", "Microsoft Safe Links", dest)
    a = S("https://portal.packwell-supplies.example/pricelists/2025.pdf"); b = S("https://packwell-supplies.example/contact?utm_source=email&utm_medium=signature")
    body_h = f"<p>Dear customer,</p><p>Our 2025 price list is available here: {m.a(a[0], 'price list', a[1], a[2])}</p><p>Kind regards,<br>Packwell Supplies<br>{m.a(b[0], 'Contact us', b[1], b[2])}</p>"
    body_t = f"Dear customer,\n\nOur 2025 price list: {m.t(a[0], a[1], a[2])}\n\nKind regards,\nPackwell Supplies\n{m.t(b[0], b[1], b[2])}"
    t, h = fwd(m, "Alex, see below — can you check the pallet rates before Friday?", "Packwell Supplies &lt;sales@packwell-supplies.example&gt;", body_h, body_t)
    reg(m, text=t, htmlbody=h)

def proofpoint_v3():
    m = Msg("proofpoint-v3-conference-reply.eml", "University reply with Proofpoint URL Defense v3 links (https://urldefense.com/v3/__<url>__;!!<id>!<sig>$) in text and HTML (decodable)",
            "cphyc/thunderbird_remove_safelinks#1 (URL: https://urldefense.com/v3/__http://www.nytimes.com__;!!HXCxUKc!gS3R_...$); leits/MeetingBar#384; ClearURLs/Addon#438",
            '"Prof. Helen Marsh" <h.marsh@physics.univ.example>', "Re: workshop programme", enc="qp")
    def P(dest): return (f"https://urldefense.com/v3/__{dest}__;!!{b64tok(7)}!{b64tok(60)}$", "Proofpoint URL Defense", dest)
    a = P("https://indico.example.org/event/4411/timetable/"); b = P("https://physics.univ.example/people/hmarsh")
    t = (f"Dear Alex,\n\nThe draft timetable is here:\n{m.t(*a)}\n\nPlease check your slot on Wednesday.\n\nBest wishes,\nHelen\n{m.t(*b)}\n")
    h = (f"<p>Dear Alex,</p><p>The draft timetable is here: {m.a(a[0], 'timetable', a[1], a[2])}</p><p>Please check your slot on Wednesday.</p><p>Best wishes,<br>Helen<br>{m.a(b[0], 'physics.univ.example/people/hmarsh', b[1], b[2])}</p>")
    reg(m, text=t, htmlbody=h)

def proofpoint_v2():
    m = Msg("proofpoint-v2-hospital-rota.eml", "Plain-text hospital rota mail with Proofpoint URL Defense v2 links (urldefense.proofpoint.com/v2/url?u=http-3A__...&d=&c=&r=&m=&s=&e=), decodable",
            "ClearURLs/Addon#438 and phavekes/unmangleOutlookSafelinks#16 (v2 format https://urldefense.proofpoint.com/v2/url?u=<encoded>&d=...; decoding: '-' to '%', '_' to '/')",
            '"Rota Office" <rota@stmarys-hospital.example>', "October on-call rota", enc="8bit")
    def enc2(u): return u.replace("-", "-2D").replace("%", "-").replace(":", "-3A").replace("/", "_").replace("?", "-3F").replace("=", "-3D").replace("&", "-26")
    def P(dest): return (f"https://urldefense.proofpoint.com/v2/url?u={enc2(dest)}&d=DwMFaQ&c={b64tok(43)}&r={b64tok(43)}&m={b64tok(43)}&s={b64tok(43)}&e=", "Proofpoint URL Defense", dest)
    a = P("https://rota.stmarys-hospital.example/october?team=ed"); b = P("https://intranet.stmarys-hospital.example/swaps")
    t = f"Hi all,\n\nThe October rota is published:\n{m.t(*a)}\n\nSwap requests by the 20th please:\n{m.t(*b)}\n\nRota Office\n"
    reg(m, text=t)

def mimecast():
    m = Msg("mimecast-protected-contract.eml", "Mimecast URL Protect rewrites (protect-eu.mimecast.com/s/<token>?domain=<host>): opaque, only the host is visible",
            "zumoshi/BrowserSelect#85 (Example: https://protect-au.mimecast.com/s/-xlzCr81nyt8ojwQRT7tQnq?domain=github.com)",
            '"Legal Team" <legal@ardent-law.example>', "Contract for signature — Ref 24/0917", enc="qp")
    def M(dest): return (f"https://protect-eu.mimecast.com/s/{b64tok(6)}C{b64tok(15)}?domain={dest.split('/')[2]}", "Mimecast", None)
    a = M("https://sign.ardent-law.example/envelopes/24-0917"); b = M("https://ardent-law.example/privacy")
    h = f"<p>Dear Alex,</p><p>Please review and sign the contract: {m.a(a[0], 'open the envelope', 'Mimecast')}</p><p>Regards,<br>Ardent Law LLP · {m.a(b[0], 'Privacy notice', 'Mimecast')}</p>"
    t = f"Dear Alex,\n\nPlease review and sign the contract:\n{m.t(a[0], 'Mimecast')}\n\nRegards,\nArdent Law LLP\nPrivacy notice: {m.t(b[0], 'Mimecast')}\n"
    reg(m, text=t, htmlbody=h)

def barracuda():
    m = Msg("barracuda-linkprotect-hotel-block.eml", "Barracuda Link Protection: linkprotect.cudasvc.com/url?a=<encoded>&c=E,1,...&typo=1 links (decodable)",
            "Public GitHub code with https://linkprotect.cudasvc.com/url?a=https%3A%2F%2Fwww.lakeviewresort.com%2F...&c=E,1,...&typo=1 (find_string 'linkprotect.cudasvc.com/url?a=')",
            '"Conference Office" <events@geo-society.example>', "Hotel block for the spring meeting", enc="qp")
    def B(dest): return (f"https://linkprotect.cudasvc.com/url?a={lowpct(q(dest))}&c=E,1,{b64tok(100)}&typo=1", "Barracuda Link Protection", dest)
    a = B("https://www.lakeside-lodge.example/reservations?promo_code=GEO52125"); b = B("https://geo-society.example/spring-meeting/travel")
    h = f"<p>Hello,</p><p>Our discounted block is open until 1 March: {m.a(a[0], 'book at Lakeside Lodge', a[1], a[2])}.</p><p>Travel tips: {m.a(b[0], 'getting there', b[1], b[2])}</p>"
    t = f"Hello,\n\nDiscounted block until 1 March: {m.t(*a)}\nTravel tips: {m.t(*b)}\n"
    reg(m, text=t, htmlbody=h)

def sophos():
    m = Msg("sophos-time-of-click-newsletter-forward.eml", "Sophos Email time-of-click links: us-west-2.protection.sophos.com/?d=<host>&u=<base64 target>&i=&t=&h=&s= (decodable)",
            "Public GitHub code with https://us-west-2.protection.sophos.com/?d=w3schools.com&u=aHR0cHM6Ly93d3cudzNzY2hvb2xzLmNvbS9...&i=...&t=...&h=...&s=AVNPUEhUT0NFTkNSWVBUSVb... (find_string 'protection.sophos.com/?d=')",
            '"Nadia Cole" <n.cole@cityschools.example>', "FW: CPD sessions this term", enc="qp")
    def S(dest): return (f"https://us-west-2.protection.sophos.com/?d={dest.split('/')[2]}&u={b64(dest)}&i={b64(hexs(24))}&t={b64(b64tok(32))}&h={hexs(32)}&s=AVNPUEhUT0NFTkNSWVBUSV{b64tok(50)}", "Sophos Email Time-of-Click", dest)
    a = S("https://cpd.teach-net.example/sessions/autumn-2024"); b = S("https://forms.example.com/r/cpd-signup")
    body_h = f"<p>Sessions this term: {m.a(a[0], 'programme', a[1], a[2])}</p><p>Sign up: {m.a(b[0], 'form', b[1], b[2])}</p>"
    body_t = f"Sessions this term: {m.t(*a)}\nSign up: {m.t(*b)}"
    t, h = fwd(m, "Alex, thought you'd want these.", "Teach-Net CPD &lt;cpd@teach-net.example&gt;", body_h, body_t)
    reg(m, text=t, htmlbody=h)

def trendmicro():
    m = Msg("trendmicro-mailing-list-patch-reply.eml", "Kernel-style mailing-list reply whose quoted links went through Trend Micro click-time protection (…trendmicro.com:443/wis/clicktime/v1/query?url=&umid=&auth=), text only, decodable",
            "LKML-style patch mails archived in public GitHub code: https://ddec1-0-en-ctp.trendmicro.com:443/wis/clicktime/v1/query?url=https%3a%2f%2fdocs.oasis%2dopen.org%2f...&umid=<uuid>&auth=<hex>-<hex> (find_string 'trendmicro.com:443/wis/clicktime')",
            '"Igor Petrenko" <igor.petrenko@opensynergy.example>', "Re: [PATCH v2] virtio-snd: align config structure", enc="8bit",
            headers=[("List-Id", "<virtualization.lists.example.org>"), ("In-Reply-To", "<20240901.123@example.org>")])
    def T(dest): return (f"https://ddec1-0-en-ctp.trendmicro.com:443/wis/clicktime/v1/query?url={lowpct(q(dest)).replace('-', '%2d')}&umid={uuid()}&auth={hexs(40)}-{hexs(40)}", "Trend Micro Click-Time Protection", dest)
    a = T("https://docs.oasis-open.org/virtio/virtio/v1.2/csd01/virtio-v1.2-csd01.html"); b = T("https://lore.kernel.example/lkml/20240830101500.GE1199@fedora/")
    t = (f"On 30.08.24 12:15, Matias wrote:\n> Could you explain why the timeout is needed?\n>\n> [1]\n> {m.t(*a)}\n\n"
         f"It is purely a matter of driver implementation; see also the v1 discussion:\n{m.t(*b)}\n\nBest regards,\nIgor\n")
    reg(m, text=t)

def slack():
    m = Msg("slack-missed-messages.eml", "Slack missed-activity mail: links shared in messages go through slack-redir.net/link?url= (decodable)",
            "Public code tests unwrapping 'https://slack-redir.net/link?url=https%3A%2F%2F...' (find_string result for chained wrappers); guard service list names the Slack redirector",
            '"Slack" <feedback@slack.com>', "[Slack] New messages in #site-ops", enc="qp")
    def S(dest): return (f"https://slack-redir.net/link?url={q(dest)}", "Slack", dest)
    a = S("https://status.cloudhost.example/incidents/9k2m1x"); b = S("https://grafana.ops.example/d/latency?orgId=1")
    items = [("", "#site-ops — Wei: upstream incident", "Provider status page shared.", a[2]), ("", "#site-ops — Ana: latency graph", "p99 back to normal.", b[2])]
    h, t = nl(m, "a.slack-edge.com/email", "Slack: new messages", "", items, S, logo=False, footer=[("Notification preferences", "https://acme-ops.slack.com/account/notifications")])
    reg(m, text=t, htmlbody=h)

# ================================================================ TRACKING: heuristic / self-hosted / rule-gap pixels
def tiny(name, desc, ev, frm, subj, url, tracker, attrs, enc="qp", items=None, cdn=None, loadhtml=None):
    m = Msg(name, desc, ev, frm, subj, enc=enc)
    host = frm.split("@")[1].rstrip(">")
    items = items or [("", "This month's update", "News from the team.", f"https://{host}/news"), ("", "Upcoming dates", "See the calendar.", f"https://{host}/calendar")]
    pix = loadhtml(m) if loadhtml else row(m.img(url, "pixel", tracker, attrs))
    h, t = nl(m, cdn or f"{host}/mail", subj, "", items, PLAIN, pixel=pix)
    reg(m, text=t, htmlbody=h)

# ================================================================ TRACKING: read receipts (RFC 8098 and legacy headers)
def rcpt(name, desc, ev, frm, subj, hdrs, body, html_body=None, enc="qp", charset="utf-8", attach=None):
    m = Msg(name, desc, ev, frm, subj, enc=enc, charset=charset)
    for k, v in hdrs:
        m.receipt(k, v)
    h = None
    if html_body:
        h = html_body(m) if callable(html_body) else html_body
    reg(m, text=body, htmlbody=h, attachments=attach or ())

RFC = "RFC 8098 (Disposition-Notification-To, message disposition notifications)"


def build():
    for f in (mailtrack, yesware, streak, superhuman, hunter, outreach, linkedin, facebook, github, twitter, netflix, reddit, google_alerts, quora, eventbrite, trello, litmus, liveintent):
        f()
    for f in (safelinks, proofpoint_v3, proofpoint_v2, mimecast, barracuda, sophos, trendmicro, slack):
        f()
    tiny("heuristic-hidden-1px-unknown-tracker.eml", "Unknown self-hosted tracker: 1px img with display:none and an id, on a host in no list (heuristic pixel, tracker \"\")",
         "easylist/easylist#8114 (<img id=\"t_r_a_c_k_i_m_g_v_4\" width=\"1px\" height=\"1px\" style=\"display:none;\" src=\"http://v5zhui.goodwell18.com/track/mail?t=...\">)",
         '"Lumora Lighting" <sales@lumora-lighting.example>', "Factory price list — LED panels", f"http://{lower(6)}.mailtrk-srv.example/track/mail?t={alnum(32)}", "",
         'id="t_r_a_c_k_i_m_g_v_4" name="t_r_a_c_k_i_m_g_v_4" width="1px" height="1px" style="display:none;"')
    tiny("snovio-cold-email-zero-size.eml", "Cold outreach sent with Snov.io on a custom tracking domain: /track/open/v2-<id> img 0x0 (service absent from guard's rules)",
         "easylist/easylist#18609 (<img src=\"https://airlogak.com/track/open/v2-123456789\" width=\"0\" height=\"0\" style=\"border:0;width:0px;height:0px;\">); MailTrackerBlocker 'Snov.io: /track/open/v2-'",
         '"Kiran Rao" <kiran@growthpilot.example>', "Quick idea for your pipeline", f"https://trk.growthpilot-mail.example/track/open/v2-{digits(9)}", "Snov.io",
         'border="0" width="0" height="0" style="border:0;width:0px;height:0px;"')
    tiny("pure360-retail-offer.eml", "Pure360 retail mail: response.pure360.com/_act/tracking.php open pixel HEIGHT=1 WIDTH=1 (service absent from guard's rules)",
         "easylist/easylist#2589 (<IMG SRC=\"http://response.pure360.com/_act/tracking.php?type=email&id=A6488632O9...&subjId=320648\" HEIGHT=\"1\" WIDTH=\"1\">)",
         '"Hartwell Home" <offers@hartwellhome.example>', "Autumn cushions: 3 for 2", f"http://response.pure360.com/_act/tracking.php?type=email&id=A{digits(7)}O{digits(25)}&subjId={digits(6)}", "Pure360",
         'BORDER="0" HEIGHT="1" WIDTH="1"')
    tiny("envoke-nonprofit-update.eml", "Envoke nonprofit update: e1.envoke.com/o/<acct>/<id>/<hash>.gif 1x1 tracking image",
         "apparition47/MailTrackerBlocker#151 (<img src=\"https://e1.envoke.com/o/3975/2471560/20fa2dc8c9c3cafd8d46efa5827ef9b8.gif\" width=\"1\" height=\"1\" id=\"nvk_tracking_image\">)",
         '"Riverkeepers Trust" <hello@riverkeepers.example>', "River clean-up: 120 volunteers!", f"https://e1.envoke.com/o/{digits(4)}/{digits(7)}/{hexs(32)}.gif", "Envoke",
         'border="0" width="1" height="1" id="nvk_tracking_image" class="nvk_images" alt="Envoke tracking"')
    tiny("blackbaud-charity-appeal-no-size.eml", "Charity appeal with a Blackbaud-style smtp.mailopen?id= open image with no size attributes (only a known-URL rule can catch it)",
         "apparition47/MailTrackerBlocker#150 (<IMG alt=\"\" hspace=\"0\" border=\"0\" src=\"https://example.org/smtp.mailopen?id=21835077\" />, attributed to Blackbaud)",
         '"Harbour Hospice" <appeals@harbourhospice.example>', "Light up a life this winter", f"https://mail.harbourhospice.example/smtp.mailopen?id={digits(8)}", "Blackbaud",
         'hspace="0" border="0"')
    tiny("ezyvet-vet-reminder-css-size.eml", "Vet clinic reminder sent by ezyVet: email_open_log.php image sized 1px only in CSS",
         "apparition47/MailTrackerBlocker#179 (<img src=\"https://[REDACTED].ezyvet.com/email_open_log.php?comid=270448&time=1657006209\" style=\"border:none;width:1px;height:1px;outline: none;\"/>)",
         '"Oakfield Vets" <reception@oakfieldvets.example>', "Reminder: Biscuit's booster is due", f"https://oakfieldvets.uk.ezyvet.com/email_open_log.php?comid={digits(6)}&time={R.randint(1725000000,1726000000)}", "ezyVet",
         'style="border:none;width:1px;height:1px;outline: none;"')
    tiny("self-hosted-opens-zero-size.eml", "Transactional mail from a vendor's own opens.* host: img height=0 width=0 inside div.tracking (heuristic pixel, tracker \"\")",
         "easylist/easylist#13924 (<div class=\"tracking\"><img alt=\"\" height=\"0\" src=\"https://opens.jscrambler.com/home/index/?token=XXX\" width=\"0\"></div>)",
         '"Codeguard Platform" <no-reply@codeguard-platform.example>', "Your monthly usage report", "", "", "",
         loadhtml=lambda m: row('<div class="tracking">' + m.img(f"https://opens.codeguard-platform.example/home/index/?token={hexs(40)}", "pixel", "", 'height="0" width="0"') + "</div>"))
    tiny("mailgun-organizing-platform-1px.eml", "Organising-platform newsletter via Mailgun custom domain: /o/eJw... img width=1px height=1px",
         "apparition47/MailTrackerBlocker#79 (<img width=\"1px\" height=\"1px\" alt=\"\" src=\"https://email.newsletter.mobilize.us/o/eJwVjEsOgyAUAE8j...\">)",
         '"Neighbourhood Action" <team@neighbourhood-action.example>', "3 events near you this weekend", f"https://email.newsletter.neighbourhood-action.example/o/eJwV{b64tok(160)}", "Mailgun",
         'width="1px" height="1px" alt=""')
    tiny("hidden-parent-unknown-pixel.eml", "Club newsletter whose tracking image sits inside a display:none parent div, unknown host (heuristic pixel via hidden parent, tracker \"\")",
         "OneClickLab/ugly-email-trackers#20 (university mail with markRead.aspx?linkId=&id1=&id2= open image); WolfCycle/Lupo-Phase1#14 (hidden-img techniques: display:none, 0x0)",
         '"Admissions Office" <admissions@westcoast-college.example>', "Your application: next steps", "", "", "",
         loadhtml=lambda m: row('<div style="display:none">' + m.img(f"https://www.admissions.westcoast-college.example/markRead.aspx?linkId={HEX(16)}&id1={HEX(32)}&id2={HEX(16)}&parsed=1", "pixel", "") + "</div>"))
    rcpt("receipt-thunderbird-dnt-flat-viewing.eml", "Thunderbird personal mail with Return receipt checked: Disposition-Notification-To", RFC + "; Thunderbird 'Return Receipt' option",
         '"Gareth Pryce" <gareth.pryce@posteo.example>', "Flat viewing on Saturday", [("Disposition-Notification-To", '"Gareth Pryce" <gareth.pryce@posteo.example>')],
         "Hi Alex,\n\nAre you still OK for the viewing at 11 on Saturday? The agent will meet us outside.\n\nGareth\n", enc="8bit")
    rcpt("receipt-outlook-dnt-and-rrt.eml", "Outlook corporate mail requesting read and delivery receipts: Disposition-Notification-To + Return-Receipt-To",
         RFC + "; Return-Receipt-To as still emitted by some Outlook/Exchange setups (legacy Sendmail header)",
         '"Finance Shared Services" <ap@ironbridge-group.example>', "Action required: supplier bank detail change",
         [("Disposition-Notification-To", "<ap@ironbridge-group.example>"), ("Return-Receipt-To", "<ap@ironbridge-group.example>")],
         "Please confirm the updated remittance details for your account by Friday.\n\nFinance Shared Services\n",
         html_body='<html><body><p style="font-family:Calibri">Please confirm the updated remittance details for your account by Friday.</p><p>Finance Shared Services</p></body></html>')
    rcpt("receipt-pegasus-confirm-reading.eml", "Pegasus Mail message with X-Confirm-Reading-To and X-PMRQC: 1", "Pegasus Mail / Mercury reading-confirmation headers (X-Confirm-Reading-To, X-PMRQC)",
         '"Bernd Vogel" <b.vogel@vogel-stb.example>', "Unterlagen Steuererklärung 2023", [("X-Confirm-Reading-To", '"Bernd Vogel" <b.vogel@vogel-stb.example>'), ("X-PMRQC", "1")],
         "Sehr geehrter Herr Alex,\n\nbitte senden Sie mir die fehlenden Belege bis zum 30. September.\n\nMit freundlichen Grüßen\nBernd Vogel\n", charset="iso-8859-1")
    rcpt("receipt-x400-generate-delivery-report.eml", "Gateway mail (X.400 heritage) with Generate-Delivery-Report and Disposition-Notification-To", RFC + "; RFC 2156 (MIXER) Generate-Delivery-Report",
         '"Procurement" <procurement@ministry-works.example>', "Tender clarification no. 4", [("Generate-Delivery-Report", ""), ("Disposition-Notification-To", "procurement@ministry-works.example")],
         "Clarification no. 4 is attached to the tender portal. Deadline unchanged.\n", enc="8bit")
    rcpt("receipt-read-receipt-to-old-client.eml", "Old desktop client message with Read-Receipt-To", "Legacy Read-Receipt-To header used by older mail clients (listed among receipt headers by mail filters)",
         '"Dorothy Finch" <dot.finch@btinternet.example>', "Bridge club rota", [("Read-Receipt-To", "dot.finch@btinternet.example")],
         "Dear Alex\n\nYou are down for teas on the 14th. Let me know if that's a problem.\n\nDorothy\n", charset="windows-1252")
    rcpt("receipt-return-receipt-requested.eml", "Mail with Return-Receipt-Requested header (Lotus Notes style)", "Return-Receipt-Requested as written by Lotus Notes/Domino gateways",
         '"Facilities" <facilities@orwell-mfg.example>', "Fire alarm test Thursday 10:00", [("Return-Receipt-Requested", "Yes")],
         "There will be a fire alarm test on Thursday at 10:00. No need to evacuate.\n")
    rcpt("receipt-roundcube-html-dnt.eml", "Roundcube HTML mail with Disposition-Notification-To (receipt only, images are cid-free and remote-free)", RFC + "; Roundcube 'Return receipt' compose option",
         '"Sofia Marin" <sofia@marin-arquitectura.example>', "Planos revisados", [("Disposition-Notification-To", "Sofia Marin <sofia@marin-arquitectura.example>")],
         "Hola Alex,\n\nTe envío los planos revisados. ¿Los vemos el martes?\n\nSofía\n",
         html_body='<html><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head><body style="font-size:10pt;font-family:Verdana"><p>Hola Alex,</p><p>Te envío los planos revisados. ¿Los vemos el martes?</p><p>Sofía</p></body></html>')
    rcpt("receipt-dnt-invoice-with-pdf.eml", "Small-business invoice with PDF attachment requesting a read receipt (Disposition-Notification-To)", RFC,
         '"Coastline Plumbing" <accounts@coastline-plumbing.example>', "Invoice 1184", [("Disposition-Notification-To", "accounts@coastline-plumbing.example")],
         "Hi Alex,\n\nPlease find invoice 1184 attached for the boiler service.\n\nThanks,\nCoastline Plumbing\n",
         attach=[("invoice-1184.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", "application", "pdf")])
    rcpt("receipt-mercury-x-confirm-only.eml", "Mercury/Pegasus list admin note with X-Confirm-Reading-To only", "Pegasus Mail / Mercury X-Confirm-Reading-To",
         '"Club Secretary" <secretary@chess-circle.example>', "Membership renewal", [("X-Confirm-Reading-To", "secretary@chess-circle.example")],
         "Your membership renews on 1 October. Reply if you want to pay by cash at the club.\n")
    rcpt("receipt-return-receipt-to-sendmail.eml", "Plain message with the legacy Sendmail Return-Receipt-To header", "Sendmail Return-Receipt-To (legacy delivery receipt request)",
         '"Andrzej Nowak" <andrzej@nowak-tlumaczenia.example>', "Tłumaczenie — termin", [("Return-Receipt-To", "andrzej@nowak-tlumaczenia.example")],
         "Dzień dobry,\n\ntłumaczenie będzie gotowe w piątek.\n\nPozdrawiam\nAndrzej Nowak\n", charset="iso-8859-2", enc="qp")
