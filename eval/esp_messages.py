"""Tracking mail sent through ESPs, marketing clouds and newsletter platforms (Mailchimp, SendGrid,
Amazon SES, ... Substack, beehiiv, Kit, MailerLite, ... Dyn): one function per message; `build()`
builds them in corpus order (build_corpus.py calls it first)."""
import json

from lib import HEX, PLAIN, Msg, R, alnum, b64, b64tok, b64u, button, digits, hexs, lower, nl, page, q, reg, row, uuid

# ================================================================ TRACKING: ESPs / marketing
def mailchimp():
    m = Msg("mailchimp-garden-club.eml", "Mailchimp newsletter: list-manage open.php pixel, opaque /track/click links (HTML+text), mc_cid/mc_eid on a plain link",
            "OneClickLab/ugly-email-trackers#6 (sample pixel fastmail.us20.list-manage.com/track/open.php?u=&id=&e=); simplify-trackers 'list-manage.com/track'",
            '"Hollybrook Garden Club" <news@hollybrook-garden.example>', "September in the allotments: seed swap & pruning night",
            headers=[("List-Unsubscribe", "<https://hollybrook.us14.list-manage.com/unsubscribe?u=a1b2>"), ("X-MC-User", "4f9c1d0e2b7a6c5d8e3f1a0b9")])
    u, e, cid = hexs(25), hexs(10), hexs(10)
    ck = lambda dest: (f"https://hollybrook.us14.list-manage.com/track/click?u={u}&id={hexs(10)}&e={e}", "Mailchimp", None)
    items = [("seeds", "Autumn seed swap", "Bring your saved seeds to the hall on the 14th.", "https://hollybrook-garden.example/events/seed-swap"),
             ("pruning", "Pruning night", "Fruit tree pruning with our orchard team.", "https://hollybrook-garden.example/events/pruning")]
    pix = row(m.img(f"https://hollybrook.us14.list-manage.com/track/open.php?u={u}&id={cid}&e={e}", "pixel", "Mailchimp", 'height="1" width="1"'))
    extra = row("Past issues are on our site: " + m.a(f"https://hollybrook-garden.example/archive?mc_cid={cid}&mc_eid={e}", "newsletter archive"))
    h, t = nl(m, "mcusercontent.com/" + u + "/images", "Hollybrook Garden Club: September", "Seed swap, pruning night and plot news", items, ck, pixel=pix,
              intro="Hello growers,", footer=[("Unsubscribe", ""), ("Update preferences", "")], after_rows=extra)
    reg(m, text=t, htmlbody=h)

def sendgrid():
    m = Msg("sendgrid-concert-tickets.eml", "SendGrid ticketing newsletter: /wf/open?upn=u001. pixel with inline style, opaque /ls/click links, srcset 1x/2x hero",
            "easylist/easylist#20158 (https://u21880139.ct.sendgrid.net/wf/open?upn=u001....); cargomedia/cm#1719 (SendGrid pixel markup); ghostery/trackerdb#152",
            '"Lantern Hall" <hello@lanternhall.example>', "This week at Lantern Hall", enc="qp",
            headers=[("X-SG-EID", "u001." + b64tok(60)), ("List-Unsubscribe", "<mailto:unsubscribe@lanternhall.example>")])
    acct = digits(8)
    ck = lambda dest: (f"https://u{acct}.ct.sendgrid.net/ls/click?upn=u001.{b64tok(120)}-2B{b64tok(40)}-3D{b64tok(30)}", "SendGrid", None)
    hero1, hero2 = "https://cdn.lanternhall.example/mail/hero-600.jpg", "https://cdn.lanternhall.example/mail/hero-1200.jpg"
    hero = row(f'<img src="{m.load(hero1)}" srcset="{m.load(hero1)} 1x, {m.load(hero2)} 2x" width="544" height="300" alt="Autumn season">')
    pix = ('<img src="' + m.load(f"https://u{acct}.ct.sendgrid.net/wf/open?upn=u001.{b64tok(150)}-2F{b64tok(90)}-3D", "pixel", "SendGrid")
           + '" alt="" width="1" height="1" border="0" style="height:1px !important;width:1px !important;border-width:0 !important;margin:0 !important;padding:0 !important">')
    items = [("quartet", "Tuesday: String Quartet", "Haydn and Britten by candlelight.", ""), ("jazz", "Friday: Late jazz", "The Marlowe Trio, doors 21:00.", "")]
    h, t = nl(m, "cdn.lanternhall.example/mail", "Lantern Hall: this week", "Quartet, late jazz and a season preview", items, ck, pixel=pix,
              footer=[("Unsubscribe", ""), ("View in browser", "")], after_rows=hero)
    reg(m, text=t, htmlbody=h)

def ses():
    m = Msg("amazon-ses-bike-shop-invoice.eml", "Amazon SES transactional invoice: /I0/ open pixel, decodable /L0/ links with UTM, base64 HTML",
            "MailTrackerBlocker list '.awstrack.me/I0/'; public GitHub code with https://kwnsfk27.r.eu-west-1.awstrack.me/L0/https:%2F%2F.../1/<msgid>/<sig>=447 (find_string 'awstrack.me/L0/https'); spatie/laravel-mailcoach-docs-old#31 (region hosts)",
            '"Spoke & Chain" <orders@spokechain.example>', "Your invoice SC-20931", enc="b64", headers=[("X-SES-Outgoing", "2024.09.03-54.240.4.12"), ("Feedback-ID", "1.eu-west-1.x7pQ2b:AmazonSES")])
    sub, mid = lower(8), f"01020192{hexs(8)}-{uuid()}-000000"
    def L(dest):
        enc = q(dest, safe=":=").replace("%3D", "=")
        return (f"https://{sub}.r.eu-west-1.awstrack.me/L0/{enc}/1/{mid}/{b64tok(27)}={R.randint(100,600)}", "Amazon SES", dest)
    items = [("", "Invoice SC-20931", "Thanks for your order: 1x gravel tyre 700x40, 1x chain checker. Total £54.80.", "https://spokechain.example/account/invoices/SC-20931?utm_source=ses&utm_medium=email&utm_campaign=invoice"),
             ("", "Book a service", "Your bike is due its autumn service.", "https://spokechain.example/workshop/book")]
    pix = '<tr><td>' + m.img(f"https://{sub}.r.eu-west-1.awstrack.me/I0/{mid}/{b64tok(27)}={R.randint(100,600)}", "pixel", "Amazon SES", 'width="1" height="1"') + '</td></tr>'
    h, t = nl(m, "static.spokechain.example/email", "Spoke & Chain: invoice", "Invoice SC-20931", items, L, pixel=pix, footer=[("Help", "https://spokechain.example/help")])
    reg(m, text=t, htmlbody=h)

def constant_contact():
    m = Msg("constant-contact-parish-newsletter.eml", "Constant Contact newsletter: on.jsp pixel inside the hidden preheader div, opaque tn.jsp links",
            "Public Constant Contact newsletter HTML in GitHub code: <img src=\"https://9vn5xrabb.cc.rs6.net/on.jsp?ca=...&a=...&c=...&ch=...\"> inside a display:none preheader div, links https://9vn5xrabb.cc.rs6.net/tn.jsp?f=001... (find_string 'rs6.net/on.jsp?', 'rs6.net/tn.jsp?f=')",
            '"St Aidan\'s Parish" <office@staidans-parish.example>', "Parish news: harvest festival", enc="qp")
    sub = lower(9) + "b"
    ck = lambda dest: (f"https://{sub}.cc.rs6.net/tn.jsp?f=001{b64tok(150)}&c={b64tok(40)}==&ch={b64tok(40)}==", "Constant Contact", None)
    items = [("harvest", "Harvest festival", "Gifts for the food bank are welcome all week.", ""), ("choir", "Choir open rehearsal", "Thursday 7pm, all voices welcome.", "")]
    h, t = nl(m, "files.constantcontact.com/9a8b7c6d501", "St Aidan's: Parish news", "", items, ck, footer=[("Unsubscribe", "")])
    pre = ('<div style="color:transparent;display:none;font-size:1px;line-height:1px;max-height:0px;max-width:0px;opacity:0;overflow:hidden">Harvest festival and choir news'
           + m.img(f"https://{sub}.cc.rs6.net/on.jsp?ca={uuid()}&a={digits(13)}&c={uuid()}&ch={uuid()}", "pixel", "Constant Contact") + "</div>")
    h = h.replace('<table role="presentation" width="100%"', pre + '\n<table role="presentation" width="100%"', 1)
    reg(m, text=t, htmlbody=h)

def sfmc():
    m = Msg("salesforce-mc-sportswear-sale.eml", "Salesforce Marketing Cloud retail mail: branded click.* open.aspx?ffcb10- pixel, opaque ?qs= links",
            "Public marketing HTML in GitHub code: <img src=\"https://click.email.amnesty.fr/open.aspx?ffcb10-...&d=70247&bmt=0\" width=\"1\" height=\"1\"> (find_string '/open.aspx?ffcb10-'); MailTrackerBlocker '/open.aspx\\?' (Salesforce); click.* /?qs= links seen in public code",
            '"Northpeak Outdoor" <news@e.northpeak.example>', "48h only: 30% off trail layers", enc="qp")
    ck = lambda dest: (f"https://click.e.northpeak.example/?qs={hexs(140)}", "Salesforce Marketing Cloud", None)
    ff = "-".join(["ffcb10", "fec" + hexs(13), "fe" + hexs(18), "fe" + hexs(16), "ff" + hexs(6), "fe" + hexs(18), "ff" + hexs(4)])
    pix = row(m.img(f"https://click.e.northpeak.example/open.aspx?{ff}&d=100182&bmt=0", "pixel", "Salesforce Marketing Cloud", 'width="1" height="1"'))
    items = [("layers", "Trail layers", "Merino base layers and windshells.", ""), ("boots", "Boots", "Waterproof mids from £89.", "")]
    h, t = nl(m, "image.e.northpeak.example/lib/fe3c15707564", "Northpeak: 48h sale", "30% off trail layers", items, ck, pixel=pix, footer=[("Unsubscribe", ""), ("Privacy", "")])
    reg(m, text=t, htmlbody=h)

def hubspot():
    m = Msg("hubspot-devtools-monthly.eml", "HubSpot marketing email: opaque hubspotlinks.com/Ctc/ links, Cto open pixel, _hsenc/_hsmi on a plain link",
            "Public newsletter text in GitHub code with https://d2v8tf04.na1.hubspotlinks.com/Ctc/5F+113/d2v8tf04/VVw9... links (find_string 'hubspotlinks.com/Ctc/'); MailTrackerBlocker 'hubspotlinks.com/[bc]to/'",
            '"Quayline" <product@quayline.example>', "What's new in Quayline: September", enc="b64")
    hid = lower(8)
    ck = lambda dest: (f"https://{hid}.na1.hubspotlinks.com/Ctc/{alnum(2)}+113/{hid}/VW{b64tok(40)}W{b64tok(40)}W{b64tok(36)}", "HubSpot", None)
    pix = row(m.img(f"https://{hid}.na1.hubspotlinks.com/Cto/{alnum(2)}+23/{hid}/JkM2-{b64tok(60)}", "pixel", "HubSpot", 'width="1" height="1" style="display:block"'))
    extra = row("Docs: " + m.a(f"https://docs.quayline.example/changelog?_hsenc=p2ANqtz-{b64tok(60)}&_hsmi={digits(9)}", "full changelog"))
    items = [("replay", "Request replay", "Replay any request against staging.", ""), ("policies", "Traffic policies", "New header rewrite actions.", "")]
    h, t = nl(m, "f.hubspotusercontent20.net/hubfs/4521337", "Quayline: September update", "Request replay and traffic policies", items, ck, pixel=pix, footer=[("Unsubscribe", "")], after_rows=extra)
    reg(m, text=t, htmlbody=h)

def hubspot_sales():
    m = Msg("hubspot-sales-cold-intro.eml", "HubSpot Sales (Sidekick) one-to-one mail: t.sidekickopen e2t/o pixel and e2t/c wrapped link",
            "trockerapp/trocker#11 (Simplify list: 't.(hubspotemail|...|sidekickopen|sigopn)', '/e2t/(o|c|to)/'); MailTrackerBlocker 't.sidekickopen', '/e2t/c/'",
            '"Dana Whitfield" <dana@ledgerly.example>', "Quick question about your month-end close", enc="qp")
    host = f"t.sidekickopen{R.randint(10,90)}.com"
    c = f"https://{host}/e2t/c/5/f18dQhb0S7kF8cpgQ{b64tok(40)}W{b64tok(30)}0?si={digits(16)}&pi={uuid()}"
    o = f"https://{host}/e2t/o/5/f18dQhb0S7kC8dDMPbW{b64tok(50)}?si={digits(16)}&pi={uuid()}"
    h = ('<div dir="ltr">Hi Alex,<br><br>I noticed your team is hiring finance ops. We help teams close the month in 3 days.<br>'
         f'Worth a look? {m.a(c, "Two-minute demo", "HubSpot Sales")}<br><br>Best,<br>Dana Whitfield<br>Ledgerly</div>'
         f'<div style="display:none">{m.img(o, "pixel", "HubSpot Sales")}</div>')
    t = f"Hi Alex,\n\nI noticed your team is hiring finance ops. We help teams close the month in 3 days.\nWorth a look? Two-minute demo: {m.t(c, 'HubSpot Sales')}\n\nBest,\nDana Whitfield\nLedgerly\n"
    reg(m, text=t, htmlbody=h)

def klaviyo():
    m = Msg("klaviyo-coffee-restock.eml", "Klaviyo shop flow: ctrk.klclick.com/o/ open pixel, opaque trk.klclick.com/ls/click links, UTM params on a plain link",
            "Public code with https://trk.klclick.com/ls/click?upn=... links (find_string 'klclick.com/ls/click?upn='); MailTrackerBlocker Klaviyo 'ctrk.klclick[123]?.com/o/'",
            '"Ember Roasters" <hello@emberroasters.example>', "Back in stock: Ethiopia Guji", enc="qp")
    ck = lambda dest: (f"https://trk.klclick.com/ls/click?upn=u001.{b64tok(140)}-3D{b64tok(30)}", "Klaviyo", None)
    pix = row(m.img(f"https://ctrk.klclick.com/o/{b64tok(24)}-{b64tok(40)}", "pixel", "Klaviyo", 'width="1" height="1" style="display:none"'))
    extra = row("Brew guide: " + m.a("https://emberroasters.example/brew/v60?utm_source=klaviyo&utm_medium=email&utm_campaign=restock_guji", "V60 recipe"))
    items = [("guji", "Ethiopia Guji is back", "Peach, jasmine and bergamot.", ""), ("", "Subscribe & save", "10% off every bag.", "")]
    h, t = nl(m, "d3k81ch9hvuctc.cloudfront.net/company/XyZ12a/images", "Ember Roasters: restock", "Guji is back", items, ck, pixel=pix, footer=[("Unsubscribe", "")], after_rows=extra)
    reg(m, text=t, htmlbody=h)

def brevo():
    m = Msg("brevo-language-school.eml", "Brevo (Sendinblue) campaign: /tr/op/ open pixel and opaque /tr/cl/ links on the sendibt3 tracking host",
            "MailTrackerBlocker Sendinblue entries ('sendibtd.com', '/[a-z][a-z]/op/'); simplify-trackers 'sendibw{2}.com/track/'",
            '"Escola Lumen" <cursos@escolalumen.example>', "Novos cursos de outono", charset="iso-8859-1", enc="qp")
    host = f"{lower(6)}.r.bh.d.sendibt3.com"
    ck = lambda dest: (f"https://{host}/tr/cl/{b64tok(110)}", "Brevo (Sendinblue)", None)
    pix = row(m.img(f"https://{host}/tr/op/{b64tok(120)}", "pixel", "Brevo (Sendinblue)", 'width="1" height="1" style="display:none"'))
    items = [("ingles", "Inglês para viagem", "Turmas às terças e quintas, início em outubro.", ""), ("alemao", "Alemão A1", "Aulas intensivas ao sábado de manhã.", "")]
    h, t = nl(m, "img-cache.net/im/3512874/escolalumen", "Escola Lumen: cursos de outono", "Inscrições abertas", items, ck, pixel=pix, footer=[("Cancelar subscrição", "")], lang="pt")
    reg(m, text=t, htmlbody=h)

def campaign_monitor():
    m = Msg("campaign-monitor-orchestra.eml", "Campaign Monitor newsletter: cmail20.com /t/ o.gif open pixel, opaque createsend /t/ links",
            "MailTrackerBlocker Campaign Monitor 'cmail[0-9][0-9]?.com/t/', 'createsend[0-9]+.com'; public test fixture 'https://cmail19.com/t/i-o-abc.gif'",
            '"Westbay Symphony" <tickets@westbaysymphony.example>', "Season opener: Mahler 5", enc="b64")
    cid = hexs(8).upper()
    ck = lambda dest: (f"https://westbaysymphony.createsend1.com/t/i-l-{lower(7)}-{lower(8)}-{R.choice('rjtyiduhk')}/", "Campaign Monitor", None)
    pix = row(m.img(f"https://westbaysymphony.cmail20.com/t/i-o-{lower(7)}-{lower(8)}/o.gif", "pixel", "Campaign Monitor", 'width="1" height="1" border="0"'))
    items = [("mahler", "Mahler 5 opens the season", "Friday 27 September, 19:30.", ""), ("family", "Family concert", "Peter and the Wolf, Sunday 11:00.", "")]
    h, t = nl(m, "i1.createsend1.com/ei/i/" + cid, "Westbay Symphony: season opener", "Mahler 5 and family concerts", items, ck, pixel=pix, footer=[("Unsubscribe", ""), ("Forward", "")])
    reg(m, text=t, htmlbody=h)

def mailgun():
    m = Msg("mailgun-ci-service-trial.eml", "Mailgun on the sender's own tracking domain: /o/eJ open pixel (1px) and opaque /c/eJ links in HTML and text",
            "apparition47/MailTrackerBlocker#79 (<img width=\"1px\" height=\"1px\" src=\"https://email.newsletter.mobilize.us/o/eJwV...\">), #108 (Mailgun); MailTrackerBlocker 'Mailgun: /o/eJ'",
            '"Buildkite-like CI" <team@pipewright.example>', "Your trial ends in 3 days", enc="qp", headers=[("X-Mailgun-Sid", "WyI" + b64tok(40)), ("X-Mailgun-Tag", "trial")])
    ck = lambda dest: (f"https://email.mg.pipewright.example/c/eJw{b64tok(150)}", "Mailgun", None)
    pix = row(m.img(f"https://email.mg.pipewright.example/o/eJw{b64tok(130)}", "pixel", "Mailgun", 'width="1px" height="1px"'))
    items = [("", "Your trial ends Friday", "Keep your pipelines running by choosing a plan.", ""), ("", "Need more time?", "Reply and we'll extend it.", "")]
    h, t = nl(m, "static.pipewright.example/mail", "Pipewright: trial ending", "", items, ck, pixel=pix, footer=[("Billing", "")])
    reg(m, text=t, htmlbody=h)

def postmark():
    m = Msg("postmark-magic-link-login.eml", "Postmark transactional sign-in mail: click.pstmrk.it /3s/ links (target without scheme, opaque), text part too",
            "Public code quoting Postmark links https://click.pstmrk.it/3s/twitter.com%2Fpostmarkapp/I54/omO0AQ/AQ/<uuid>/5/<hash> and https://click.pstmrk.it/3s/<host>%2F<path>/ahc/k_CuAQ/AQ/<uuid>/1/<hash> (find_string 'click.pstmrk.it/3s/')",
            '"Notewell" <no-reply@notewell.example>', "Your sign-in link", enc="8bit", headers=[("X-PM-Message-Id", uuid())])
    def P(dest):
        return (f"https://click.pstmrk.it/3s/{q(dest)}/{b64tok(3)}/{b64tok(6)}AQ/AQ/{uuid()}/{R.randint(1,9)}/{b64tok(10)}", "Postmark", None)
    u1 = P("notewell.example/login/verify?token=" + alnum(32)); u2 = P("notewell.example/help/sign-in")
    b1 = button(m.a(u1[0], 'Sign in', 'Postmark', attrs='style="color:#fff"')); b2 = m.a(u2[0], 'Sign-in help', 'Postmark')
    h = page("Sign in", row(f"<p>Hi Alex — click below to sign in to Notewell. The link expires in 15 minutes.</p>{b1}"
             f'<p style="font-size:13px">Trouble? {b2}</p>'))
    t = f"Hi Alex — use this link to sign in to Notewell (expires in 15 minutes):\n{m.t(u1[0], 'Postmark')}\n\nTrouble? {m.t(u2[0], 'Postmark')}\n"
    reg(m, text=t, htmlbody=h)

def mandrill():
    m = Msg("mandrill-legacy-event-alert.eml", "Mandrill (legacy format): /track/open.php pixel and click.php links carrying url= (decodable) in HTML and text",
            "quidsup/notrack#223 (mandrillapp.com/track/open.php pixel); public code with http://mandrillapp.com/track/click.php?u=30104851&id=<32hex>&url=http%3A%2F%2F...&url_id=<40hex> (find_string 'mandrillapp.com/track/click.php?u=')",
            '"Meetwise" <events@meetwise.example>', "New event near you: Riverside Run Club", enc="qp")
    u = digits(8)
    def C(dest): return (f"https://mandrillapp.com/track/click.php?u={u}&id={hexs(32)}&url={q(dest)}&url_id={hexs(40)}", "Mandrill", dest)
    items = [("", "Riverside Run Club", "Saturday 08:00, 5k social run.", "https://meetwise.example/event/rrc-0921"), ("", "Similar events", "Three more this weekend.", "https://meetwise.example/explore?near=riverside")]
    pix = row(m.img(f"https://mandrillapp.com/track/open.php?u={u}&id={hexs(32)}", "pixel", "Mandrill", 'height="1" width="1"'))
    h, t = nl(m, "cdn.meetwise.example/mail", "Meetwise: new event", "", items, C, pixel=pix, footer=[("Notification settings", "https://meetwise.example/settings/notifications")])
    reg(m, text=t, htmlbody=h)

def mailjet():
    m = Msg("mailjet-museum-friends.eml", "Mailjet campaign: /oo/.../e.gif open pixel, /lnk/ links whose last segment is the base64url target (decodable)",
            "Public code with http://x4tlp.mjt.lu/lnk/EAAAA.../1/<tok>/aHR0cHM6Ly93d3cuc2ltcGxleC5jb20v (find_string 'mjt.lu/lnk/'); MailTrackerBlocker Mailjet '/oo/[a-z0-9]+/[a-z0-9]{8}/e.gif'; simplify 'mjt.lu/oo'",
            '"Friends of the Maritime Museum" <amis@musee-maritime.example>', "Les rendez-vous d'octobre", enc="qp")
    sub = lower(5)
    def L(dest): return (f"http://{sub}.mjt.lu/lnk/{b64tok(70)}/{R.randint(1,9)}/{b64tok(22)}/{b64u(dest)}", "Mailjet", dest)
    items = [("expo", "Exposition : phares et balises", "Vernissage le 3 octobre à 18h.", "https://musee-maritime.example/expositions/phares"),
             ("atelier", "Atelier de nœuds marins", "Pour les 8–12 ans, le mercredi.", "https://musee-maritime.example/ateliers/noeuds?utm_source=mailjet&utm_medium=email&utm_campaign=octobre")]
    pix = row(m.img(f"http://{sub}.mjt.lu/oo/{b64tok(60).lower().replace('-','a').replace('_','b')}/{lower(8)}/e.gif", "pixel", "Mailjet", 'height="1" width="1" style="display:none"'))
    h, t = nl(m, "musee-maritime.example/newsletter", "Amis du musée : octobre", "Phares, balises et nœuds marins", items, L, pixel=pix, lang="fr",
              footer=[("Se désinscrire", "https://musee-maritime.example/desinscription")])
    reg(m, text=t, htmlbody=h)

def customerio():
    m = Msg("customerio-habit-app.eml", "Customer.io lifecycle mail: /e/o/ open pixel, /e/c/<base64 JSON href> links (decodable) with UTM",
            "simplify-trackers / MailTrackerBlocker Customer.io entries ('customeriomail.com/e/o', 'track.customer.io/e/o', '/e/o/.+')",
            '"Streakly" <coach@streakly.example>', "You're on a 6-day streak", enc="qp")
    eid = b64tok(30)
    def C(dest):
        j = json.dumps({"email_id": eid, "href": dest, "internal": hexs(12), "link_id": R.randint(1000, 99999)}, separators=(",", ":"))
        return (f"https://e.customeriomail.com/e/c/{b64u(j)}/{b64tok(43)}", "Customer.io", dest)
    items = [("streak", "6 days in a row", "Keep it going with a 5-minute session today.", "https://app.streakly.example/today?utm_source=customerio&utm_medium=email&utm_campaign=streak_6"),
             ("", "Invite a friend", "Streaks are easier together.", "https://streakly.example/invite")]
    pix = row(m.img(f"https://e.customeriomail.com/e/o/{b64u(json.dumps({'email_id': eid}))}", "pixel", "Customer.io", 'width="1" height="1"'))
    h, t = nl(m, "userimg-assets.customeriomail.com/images/client-env-51234", "Streakly: keep going", "", items, C, pixel=pix, footer=[("Unsubscribe", "https://streakly.example/unsubscribe")])
    reg(m, text=t, htmlbody=h)

def iterable():
    m = Msg("iterable-cloud-storage-tips.eml", "Iterable on the sender's links.* domain: /e/eo?_t=&_m=&_e= open pixel (1px, display:none) in the preheader; plain links with UTM",
            "Public marketing HTML in GitHub code: <img src=\"https://links.dropbox.com/e/eo?_t=...&amp;_m=...&amp;_e=...\">, links.blockchain.com/e/eo?_t= with width:1px;height:1px;display:none (find_string '/e/eo?_t=')",
            '"Boxwise" <no-reply@boxwise.example>', "3 ways to free up space", enc="b64")
    pix_url = f"https://links.boxwise.example/e/eo?_t={hexs(32)}&_m={hexs(32)}&_e={b64tok(120)}%3D"
    items = [("cleanup", "Find large files", "Sort by size and clear what you don't need.", "https://www.boxwise.example/help/large-files?utm_source=iterable&utm_medium=email&utm_campaign=space_tips"),
             ("", "Turn on offline sync", "Keep only what you use on this device.", "https://www.boxwise.example/help/offline")]
    h, t = nl(m, "cfl.boxwise-static.example/email", "Boxwise: free up space", "", items, PLAIN, footer=[("Email preferences", "https://www.boxwise.example/account/email")])
    h = h.replace("</body>", m.img(pix_url, "pixel", "Iterable", 'style="border:0;width:1px;height:1px;display:none!important"') + "\n</body>")
    reg(m, text=t, htmlbody=h)

def substack():
    m = Msg("substack-essay-weekly.eml", "Substack post: /redirect/2/<JWT payload> links (decodable key e), Mailgun open pixel and /c/ link on email.mg-d0.substack.com",
            "Substack newsletters archived in public GitHub repos: 'Unsubscribe https://substack.com/redirect/2/eyJlIjoiaHR0cHM6Ly9...' (find_string 'substack.com/redirect/2/'); public code noting 'https://email.mg-d0.substack.com/c/{encoded token}' click redirects",
            '"Field Notes" <fieldnotes@substack.com>', "On repairing things", enc="qp", headers=[("List-Unsubscribe", "<https://fieldnotes.substack.com/action/disable_email>")])
    def S(dest):
        hdr = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")))
        pl = b64u(json.dumps({"e": dest, "p": 148203311, "s": 612044, "f": True, "u": 88412931, "iat": 1725350000, "exp": 1727942000, "iss": "pub-612044", "sub": "link-redirect"}, separators=(",", ":")))
        return (f"https://substack.com/redirect/2/{hdr}.{pl}.{b64tok(43)}", "Substack", dest)
    items = [("", "On repairing things", "A toaster, a bicycle and the joy of the fix.", "https://fieldnotes.substack.com/p/on-repairing-things"),
             ("", "Leave a comment", "", "https://fieldnotes.substack.com/p/on-repairing-things/comments")]
    mg = f"https://email.mg-d0.substack.com/c/eJx{b64tok(140)}"
    extra = row("Share: " + m.a(mg, "Share Field Notes", "Mailgun"))
    pix = row(m.img(f"https://email.mg-d0.substack.com/o/eJx{b64tok(120)}", "pixel", "Mailgun", 'width="1" height="1" style="height:1px;width:1px"'))
    h, t = nl(m, "substackcdn.com/image/fetch/w_1100", "Field Notes: On repairing things", "", items, S, pixel=pix, after_rows=extra,
              footer=[("Unsubscribe", "https://fieldnotes.substack.com/action/disable_email?token=" + b64tok(40))])
    reg(m, text=t, htmlbody=h)

def beehiiv():
    m = Msg("beehiiv-ai-tools-digest.eml", "beehiiv newsletter: /ss/o/.../ho.gif open pixel, opaque /ss/c/u001. links in HTML and text",
            "OneClickLab/ugly-email-trackers#54 (sample https://link.mail.beehiiv.com/ss/o/Rg4541mnh55K8abrT_bbOA/409/s4ECIjA-SmqJRefA9gLGvg/ho.gif); public code with https://link.mail.beehiiv.com/ss/c/u001.<token> links",
            '"The Toolbench" <toolbench@mail.beehiiv.com>', "5 new AI tools worth your time", enc="qp")
    ck = lambda dest: (f"https://link.mail.beehiiv.com/ss/c/u001.{b64tok(160)}/{R.randint(400,499)}/{b64tok(22)}/h{R.randint(1,40)}/h001.{b64tok(43)}", "beehiiv", None)
    pix = row(m.img(f"https://link.mail.beehiiv.com/ss/o/{b64tok(22)}/{R.randint(400,499)}/{b64tok(22)}/ho.gif", "pixel", "beehiiv", 'alt="" width="1" height="1" style="height:1px!important;width:1px!important"'))
    items = [("tool1", "Transcribe meetings offline", "A local-first recorder.", ""), ("tool2", "Spreadsheet agent", "Ask questions of your CSVs.", ""), ("", "Quick hits", "Three smaller launches.", "")]
    h, t = nl(m, "media.beehiiv.com/cdn-cgi/image/fit=scale-down,format=auto,onerror=redirect,quality=80/uploads/asset/file/2f1c", "The Toolbench", "", items, ck, pixel=pix, footer=[("Unsubscribe", "")])
    reg(m, text=t, htmlbody=h)

def kit():
    m = Msg("kit-illustrator-letter.eml", "Kit (ConvertKit) broadcast: open.convertkit-mail2.com pixel, click links whose last segment is the base64 target (decodable)",
            "OneClickLab/ugly-email-trackers#3 (ConvertKit sample pixel el2.convertkit-mail.com/o/...); MailTrackerBlocker ConvertKit 'open.convertkit-mail2.com/'",
            '"Ines Okafor" <ines@inesdraws.example>', "Sketchbook Sunday #88", enc="qp")
    def K(dest): return (f"https://click.convertkit-mail2.com/{lower(20)}/{lower(15)}/{b64u(dest, pad=True)}", "Kit (ConvertKit)", dest)
    pix = row(m.img(f"https://open.convertkit-mail2.com/{lower(20)}", "pixel", "Kit (ConvertKit)", 'alt="" width="1" height="1" style="display:block"'))
    items = [("sketch", "This week's sketch", "Ink and wash harbour study.", "https://inesdraws.example/sketchbook/88"), ("", "Shop: print sale", "A3 prints this week only.", "https://shop.inesdraws.example/prints")]
    h, t = nl(m, "embed.filekitcdn.com/e/5Yt7", "Sketchbook Sunday #88", "", items, K, pixel=pix, footer=[("Unsubscribe", "https://unsubscribe.kit.example/placeholder")])
    reg(m, text=t, htmlbody=h)

def mailerlite():
    m = Msg("mailerlite-podcast-notes.eml", "MailerLite campaign: /link/o/ open pixel and opaque /link/c/ links",
            "MailTrackerBlocker MailerLite entries ('/link/o/', 'clicks.mlsend.com')",
            '"Slow Radio Podcast" <episodes@slowradio.example>', "Episode 112: night trains", enc="b64")
    ck = lambda dest: (f"https://click.mailerlite.com/link/c/{b64tok(100)}", "MailerLite", None)
    pix = row(m.img(f"https://click.mailerlite.com/link/o/{b64tok(100)}", "pixel", "MailerLite", 'width="1" height="1" style="display:block"'))
    items = [("ep112", "Night trains of Europe", "Listen on your favourite app.", ""), ("", "Show notes", "Links and photos.", "")]
    h, t = nl(m, "storage.mlcdn.com/account_image/612391", "Slow Radio: episode 112", "", items, ck, pixel=pix, footer=[("Unsubscribe", "")])
    reg(m, text=t, htmlbody=h)

def activecampaign():
    m = Msg("activecampaign-cooking-course.eml", "ActiveCampaign: lt.php ?l=open pixel and /Prod/link-tracker?redirectUrl=<base64 of percent-encoded target> links (decodable)",
            "Public GitHub code/mail with https://caelum57945.lt.acemlnb.com/Prod/link-tracker?redirectUrl=aHR0cHMlM0ElMkYl...&sig=...&iat=... (find_string '/Prod/link-tracker?'); simplify-trackers 'lt.php(.*)\\?l=open'",
            '"Knife & Fork School" <school@knifefork.example>', "Lesson 3 is ready: knife skills", enc="qp")
    def A(dest): return (f"https://knifefork.lt.acemlnb.com/Prod/link-tracker?redirectUrl={q(b64(q(dest)))}&sig={b64tok(44)}&iat={R.randint(1725000000,1726000000)}&a=%7C%7C{digits(9)}%7C%7C&account=knifefork%2Eactivehosted%2Ecom&email={b64tok(40)}&s={hexs(32)}&i=12A34A5A67", "ActiveCampaign", dest)
    pix = row(m.img(f"https://knifefork.activehosted.com/lt.php?nl=3&c=41&m=52&s={hexs(32)}&l=open", "pixel", "ActiveCampaign", 'width="1" height="1" border="0"'))
    items = [("knives", "Lesson 3: knife skills", "Julienne, brunoise and the claw grip.", "https://learn.knifefork.example/courses/basics/lesson-3"), ("", "Community kitchen", "Share your dice.", "https://community.knifefork.example/")]
    h, t = nl(m, "knifefork.activehosted.com/content/x7Yq2", "Knife & Fork: lesson 3", "", items, A, pixel=pix, footer=[("Unsubscribe", "https://knifefork.example/unsubscribe")])
    reg(m, text=t, htmlbody=h)

def aweber():
    m = Msg("aweber-beekeeping-blog.eml", "AWeber list mail: openrate.aweber.com open pixel and opaque clicks.aweber.com /y/ct/ links (service absent from guard's rules)",
            "MailTrackerBlocker and simplify-trackers AWeber entry 'openrate.aweber.com'; public tracker lists mapping openrate.aweber.com to AWeber",
            '"Hive Notes" <notes@hivenotes.example>', "Winter prep for your colonies", enc="qp")
    ck = lambda dest: (f"https://clicks.aweber.com/y/ct/?l={b64tok(5)}&m={b64tok(15)}&b={b64tok(22)}", "AWeber", None)
    pix = row(m.img(f"https://openrate.aweber.com/y/o/?l={b64tok(5)}&m={b64tok(15)}&c={digits(6)}", "pixel", "AWeber", 'height="1" width="1" border="0"'))
    items = [("hive", "Winter prep checklist", "Mouse guards, insulation, fondant.", ""), ("", "Reader question", "Should I feed in November?", "")]
    h, t = nl(m, "hivenotes.example/wp-content/uploads/2024/09", "Hive Notes: winter prep", "", items, ck, pixel=pix, footer=[("Unsubscribe", "")])
    reg(m, text=t, htmlbody=h)

def acoustic():
    m = Msg("acoustic-bank-statement-ready.eml", "Acoustic (Silverpop) bank notice: /open/log/ pixel with display:none and no size, plain links with UTM (service absent from guard's rules)",
            "apparition47/MailTrackerBlocker#58 (<IMG src=\"https://open.mkt81.net/open/log/[campaignID/userID/integer/jobID/integer/integer]\" style=\"display: none\">); MailTrackerBlocker Acoustic 'mkt[0-9]+.com/open', '/open/log/'",
            '"Harbour Savings Bank" <alerts@harboursavings.example>', "Your September statement is ready", enc="b64")
    pix = f'<IMG src="{m.load(f"https://open.mkt{R.randint(10,99)}.net/open/log/{digits(8)}/{b64tok(20)}/0/{b64tok(16)}/1/0", "pixel", "Acoustic")}" style="display: none">'
    items = [("", "Statement ready", "Sign in to view your statement.", "https://www.harboursavings.example/signin?utm_source=acoustic&utm_medium=email&utm_campaign=estatement"),
             ("", "Security tip", "We will never ask for your PIN.", "https://www.harboursavings.example/security")]
    h, t = nl(m, "www.harboursavings.example/email/img", "Harbour Savings: statement", "", items, PLAIN)
    h = h.replace("</body>", pix + "\n</body>")
    reg(m, text=t, htmlbody=h)

def eloqua():
    m = Msg("eloqua-b2b-report-download.eml", "Oracle Eloqua B2B mail: /e/FooterImages/FooterImage1 open pixel and opaque /e/er links",
            "MailTrackerBlocker Oracle entries ('/e/FooterImages/FooterImage', 'en25.com/e/'); simplify-trackers '[a-zA-Z0-9-.]+\\/e\\/FooterImages\\/FooterImage'",
            '"Corvant Research" <insights@corvant.example>', "Your copy: 2024 Logistics Benchmark", enc="qp")
    site = digits(10)
    ck = lambda dest: (f"https://s{site}.t.eloqua.com/e/er?s={site}&lid={R.randint(1000,99999)}&elqTrackId={hexs(32)}&elq={hexs(32)}&elqaid={R.randint(1000,9999)}&elqat=1", "Oracle Eloqua", None)
    pix = row(m.img(f"https://s{site}.t.eloqua.com/e/FooterImages/FooterImage1?elq={hexs(32)}&siteid={site}", "pixel", "Oracle Eloqua", 'alt="" width="1" height="1" border="0"'))
    items = [("report", "2024 Logistics Benchmark", "62 pages of carrier and warehouse data.", ""), ("", "Webinar: the findings", "Thursday 16:00 CET.", "")]
    h, t = nl(m, "img06.en25.com/EloquaImages/clients/Corvant", "Corvant: your report", "", items, ck, pixel=pix, footer=[("Manage subscriptions", "")])
    reg(m, text=t, htmlbody=h)

def marketo():
    m = Msg("marketo-devcon-registration.eml", "Marketo on a branded host: /trk?t=1&mid= open pixel, mkt_tok on plain destination links",
            "MailTrackerBlocker Adobe/Marketo entry '/trk\\?t=1&mid='; simplify-trackers 'marketo.com\\/trk', '\\/trk\\?t='",
            '"DevCon Europe" <events@devcon-europe.example>', "You're registered: DevCon Europe 2024", enc="qp")
    tok = b64tok(120)
    L = lambda dest: (dest + ("&" if "?" in dest else "?") + "mkt_tok=" + tok, None, None)
    pix = row(m.img(f"https://go.devcon-europe.example/trk?t=1&mid={b64tok(80)}", "pixel", "Marketo", 'width="1" height="1" style="display:block"'))
    items = [("badge", "Your badge", "Collect it at Hall B from 08:00.", "https://devcon-europe.example/attend/badge"), ("", "Build your agenda", "Sessions fill fast.", "https://devcon-europe.example/agenda?track=cloud")]
    h, t = nl(m, "go.devcon-europe.example/rs/123-ABC-456/images", "DevCon Europe: registered", "", items, L, pixel=pix, footer=[("Unsubscribe", "https://go.devcon-europe.example/UnsubscribePage.html")])
    reg(m, text=t, htmlbody=h)

def sailthru():
    m = Msg("sailthru-magazine-daily.eml", "Sailthru publisher daily: link.* /img/<id>/<8>.gif open pixel, /click/<blast>/<base64 target>/<hash> links (decodable)",
            "MailTrackerBlocker Sailthru entries ('sailthru.com/trk', '/img/[a-z0-9_.]+/[a-z0-9_]{8}.gif'); simplify-trackers 'sailthru.com\\/trk'",
            '"The Weekly Reader" <daily@weeklyreader.example>', "Today: the quiet revival of the night bus", enc="qp")
    blast = f"{digits(8)}.{digits(5)}"
    def S(dest): return (f"https://link.weeklyreader.example/click/{blast}/{b64u(dest, pad=True)}/{hexs(24)}", "Sailthru", dest)
    pix = row(m.img(f"https://link.weeklyreader.example/img/{hexs(24)}/{lower(8)}.gif", "pixel", "Sailthru", 'width="1" height="1" alt=""'))
    items = [("bus", "The quiet revival of the night bus", "Cities are bringing back late routes.", "https://weeklyreader.example/2024/09/night-bus"),
             ("books", "Five novels for autumn", "Our critics' picks.", "https://weeklyreader.example/2024/09/autumn-novels")]
    h, t = nl(m, "images.weeklyreader.example/newsletter", "The Weekly Reader daily", "", items, S, pixel=pix, footer=[("Manage newsletters", "https://weeklyreader.example/newsletters")])
    reg(m, text=t, htmlbody=h)

def getresponse():
    m = Msg("getresponse-game-store-on-own-domain.eml", "GetResponse on the sender's email2.* domain: open.html?x= pixel (0x0) and click.html?x= links (opaque)",
            "apparition47/MailTrackerBlocker#90 (GOG newsletter: <img src=\"https://email2.gog.com/open.html?x=...&m=...&mc=...&s=...&u=...&z=...&\" width=\"0\" height=\"0\">, attributed to GetResponse); MailTrackerBlocker GetResponse '/open.html\\?x='",
            '"Pixelcrate" <newsletter@email2.pixelcrate.example>', "Weekend deals: up to 85% off classics", enc="qp")
    qs = lambda: f"x={alnum(12)}&m={alnum(4)}&mc={alnum(2)}&s={alnum(12)}&u={alnum(5)}&z={alnum(12)}&"
    ck = lambda dest: (f"https://email2.pixelcrate.example/click.html?x={alnum(12)}&lc={alnum(4)}&mc={alnum(2)}&s={alnum(12)}&u={alnum(5)}&z={alnum(12)}&", "GetResponse", None)
    pix = row(m.img(f"https://email2.pixelcrate.example/open.html?{qs()}", "pixel", "GetResponse", 'width="0" height="0" border="0" role="presentation"'))
    items = [("rpg", "Classic RPG bundle", "Five games, one price.", ""), ("strategy", "Strategy week", "Up to 85% off.", "")]
    h, t = nl(m, "images.pixelcrate.example/mail", "Pixelcrate: weekend deals", "", items, ck, pixel=pix, footer=[("Unsubscribe", "")])
    reg(m, text=t, htmlbody=h)

def dyn():
    m = Msg("dyn-email-delivery-club-notice.eml", "Dyn Email Delivery: trk.email.dynect.net/trk.php open pixel declared 2x2",
            "cargomedia/cm#1719 (<img src=\"http://trk.email.dynect.net/trk.php?a=/o2/575/...i.gif&i=...&x=\" width=\"2\" height=\"2\">)",
            '"Northfield Rowing Club" <secretary@northfieldrowing.example>', "AGM papers and winter training", enc="qp")
    pix = row(m.img(f"http://trk.email.dynect.net/trk.php?a=/o2/{R.randint(100,999)}/{b64tok(90)}%3D%3D/i.gif&i={digits(14)}.{HEX(12)}%40mail6-07-ewr.dyndns.com&x=", "pixel", "Dyn Email Delivery", 'alt="" width="2" height="2"'))
    items = [("", "AGM on 12 October", "Papers attached on the members' page.", "https://northfieldrowing.example/members/agm-2024"), ("", "Winter ergs", "Tuesday and Thursday 06:30.", "https://northfieldrowing.example/training")]
    h, t = nl(m, "northfieldrowing.example/img", "Northfield Rowing: AGM", "", items, PLAIN, pixel=pix, logo=False)
    reg(m, text=t, htmlbody=h)



def build():
    for f in (mailchimp, sendgrid, ses, constant_contact, sfmc, hubspot, hubspot_sales, klaviyo, brevo, campaign_monitor, mailgun, postmark, mandrill,
              mailjet, customerio, iterable, substack, beehiiv, kit, mailerlite, activecampaign, aweber, acoustic, eloqua, marketo, sailthru, getresponse, dyn):
        f()
