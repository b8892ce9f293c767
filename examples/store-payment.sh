#!/usr/bin/env bash
# The two ways a shop takes points, as an integrator would:
# - an online store's server (めいぶつチョイス) registers its origin, opens a checkout session
#   for an order and gets the client secret its page hands to the widget; the resident signs
#   in and confirms inside the widget (see examples/meibutsu and docs/checkout.md). The
#   store's key alone cannot charge a resident;
# - a counter terminal is a device the shop enrolled with a pairing code; it signs every
#   request, and charges only what the resident's card signs: it asks for a challenge naming the
#   terms, the card signs it with the PIN at the reader, and the terminal sends the payment or
#   hold with the signature (docs/counter.md; the whole flow with a virtual card is
#   server/tests/it/counter.rs). Nothing else charges a resident at a counter.
#
#   examples/store-payment.sh http://127.0.0.1:8080 mykey-demo-keys.json
set -euo pipefail
base=${1:-http://127.0.0.1:8080}
keys=${2:-mykey-demo-keys.json}
get() { python3 -c "import json,sys;d=json.load(open('$keys'));print(eval(sys.argv[1],{},d))" "$1"; }
online_key=$(get online_store); store_key=$(get store)
resident=$(get "ids['resident']"); shop=$(get "ids['shop']"); municipality=$(get "ids['municipality']")
online=$(get "ids['online_store']")
uuid() { python3 -c 'import uuid;print(uuid.uuid4())'; }
call() { # method path key [json]
  curl -sS -X "$1" "$base$2" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' ${4:+-d "$4"}
  echo
}

echo "# the online store registers the origin its pages are served from (and gets its publishable key)"
call PUT "/v1/shops/$online/checkout" "$online_key" '{"origins":["http://127.0.0.1:8090"]}'

order=$(uuid)
body="{\"id\":\"$order\",\"shop\":$online,\"amount\":1200,\"order_reference\":\"MC-1001\",\"line_items\":[{\"name\":\"焼きまんじゅう\",\"quantity\":2,\"unit_amount\":600}]}"
echo "# it opens a checkout session for an order of 1,200 yen: its page mounts the widget with the client secret"
call POST /v1/checkout/sessions "$online_key" "$body"
echo "# the same request again (a retry after a timeout): the same session and client secret"
call POST /v1/checkout/sessions "$online_key" "$body"

echo "# its key alone may not charge a resident"
call POST /v1/payments "$online_key" \
  "{\"id\":\"$(uuid)\",\"resident\":$resident,\"municipality\":$municipality,\"shop\":$online,\"amount\":100}"

echo "# at the counter: the shop makes a pairing code for a new terminal (once, within ten minutes);"
echo "# the terminal enrols its own P-256 key with it and signs every request (docs/counter.md)"
call POST "/v1/shops/$shop/pairing-codes" "$store_key"

echo "# a counter challenge no enrolled device signed is refused, even with the shop's own key"
call POST "/v1/shops/$shop/counter-challenges" "$store_key" \
  "{\"kind\":\"payment\",\"municipality\":$municipality,\"amount\":50}"

echo "# a fractional amount is refused with a problem the code can act on"
call POST /v1/checkout/sessions "$online_key" \
  "{\"id\":\"$(uuid)\",\"shop\":$online,\"amount\":1.5,\"order_reference\":\"MC-1002\",\"line_items\":[{\"name\":\"焼きまんじゅう\",\"quantity\":1,\"unit_amount\":1.5}]}"
