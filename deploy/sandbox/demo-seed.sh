#!/bin/busybox sh
# demo-seed.sh - the "sandbox-demo" job of deploy/compose.yaml's sandbox
# profile: a demo tenant and its WhatsApp channel, with the known demo
# secrets of that profile (never use them anywhere else). Idempotent: an
# existing tenant or channel is left as it is, so `up` may run again on the
# same volumes. Runs in the tern/tern-demo image (ternctl + a static
# busybox for this script); TN_PG_DSN / PGPASSFILE and TN_MASTER_KEY_FILE
# as for ternctl.
#   TN_DEMO_SLUG, TN_DEMO_PHONE_NUMBER_ID, TN_DEMO_APP_SECRET,
#   TN_DEMO_VERIFY_TOKEN, TN_DEMO_ACCESS_TOKEN (all required)
set -eu
bb=/bin/busybox
slug=${TN_DEMO_SLUG:?} pnid=${TN_DEMO_PHONE_NUMBER_ID:?}
tab=$($bb printf '\t')
if ternctl tenant list | $bb awk -F "$tab" -v s="$slug" '$2 == s { f = 1 } END { exit !f }'; then
    echo "demo tenant $slug exists"
else
    ternctl tenant add --slug "$slug" --name "Demo Plumbing" --tz Europe/Berlin >/dev/null
    echo "demo tenant $slug added"
fi
if ternctl channel list --tenant "$slug" | $bb awk -F "$tab" -v a="$pnid" '$2 == "whatsapp" && $3 == a { f = 1 } END { exit !f }'; then
    echo "demo whatsapp channel $pnid exists"
else
    ternctl channel add --tenant "$slug" --kind whatsapp --address "$pnid" --name "Demo WhatsApp" \
        --secret "app_secret=${TN_DEMO_APP_SECRET:?}" --secret "verify_token=${TN_DEMO_VERIFY_TOKEN:?}" \
        --secret "access_token=${TN_DEMO_ACCESS_TOKEN:?}" >/dev/null
    echo "demo whatsapp channel $pnid added"
fi
