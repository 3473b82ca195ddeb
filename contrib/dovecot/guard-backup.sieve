# guard: keep the original in the user's "Guard Originals" folder, then clean the copy stored
# in the inbox (sieve_before, every user).
require ["vnd.dovecot.filter", "imap4flags", "envelope", "variables", "fileinto", "copy",
         "mailbox"];

set "recipient" "";
if envelope :all :matches "to" "*" {
  set "recipient" "${1}";
}

# Before the filter, so the copy is the message as it arrived.
fileinto :copy :create "Guard Originals";

if filter "guard-strip" ["--recipient", "${recipient}"] {
  if header :contains "X-Guard" "receipt-header=" {
    addflag "$MDNSent";
  }
}
