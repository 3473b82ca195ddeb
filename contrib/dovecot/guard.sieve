# guard: clean the message before it is stored (sieve_before, every user).
require ["vnd.dovecot.filter", "imap4flags", "envelope", "variables"];

# Whose settings guard reads (--policy-dir in the program): the envelope recipient.
set "recipient" "";
if envelope :all :matches "to" "*" {
  set "recipient" "${1}";
}

# guard-strip writes the message cleaned, or unchanged when it cannot help. If it fails, or runs
# past sieve_filter_exec_timeout, the filter test is false and the message is left as it was.
if filter "guard-strip" ["--recipient", "${recipient}"] {
  # guard removed a read-receipt request (it says so in its own X-Guard header): mark the
  # receipt as handled, as `guard clean` does over IMAP, so no client offers to send one.
  if header :contains "X-Guard" "receipt-header=" {
    addflag "$MDNSent";
  }
}
