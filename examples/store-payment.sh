#!/usr/bin/env bash
# A shop's backend taking a point payment in two phases, as an integrator would:
# check the resident's balances, hold the amount, capture part of it, and show that
# retrying a request with the same id is safe.
#
#   examples/store-payment.sh http://127.0.0.1:8080 mykey-demo-keys.json
set -euo pipefail
base=${1:-http://127.0.0.1:8080}
keys=${2:-mykey-demo-keys.json}
get() { python3 -c "import json,sys;d=json.load(open('$keys'));print(eval(sys.argv[1],{},d))" "$1"; }
store_key=$(get store); terminal_key=$(get terminal)
resident=$(get "ids['resident']"); shop=$(get "ids['shop']"); municipality=$(get "ids['municipality']")
uuid() { python3 -c 'import uuid;print(uuid.uuid4())'; }
call() { # method path key [json]
  curl -sS -X "$1" "$base$2" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' ${4:+-d "$4"}
  echo
}

echo "# balances the counter shows when the card is held"
call GET "/v1/residents/$resident/balances" "$terminal_key"

hold=$(uuid)
echo "# hold 50 points for 10 minutes"
call POST /v1/holds "$store_key" \
  "{\"id\":\"$hold\",\"resident\":$resident,\"municipality\":$municipality,\"shop\":$shop,\"amount\":50,\"timeout_seconds\":600}"

capture=$(uuid)
body="{\"id\":\"$capture\",\"amount\":30}"
echo "# capture 30 of them; the other 20 are released"
call POST "/v1/holds/$hold/capture" "$store_key" "$body"
echo "# the same request again (a retry after a timeout): the same answer, nothing moves twice"
call POST "/v1/holds/$hold/capture" "$store_key" "$body"

echo "# a fractional amount is refused with a problem the code can act on"
call POST /v1/payments "$store_key" \
  "{\"id\":\"$(uuid)\",\"resident\":$resident,\"municipality\":$municipality,\"shop\":$shop,\"amount\":1.5}"
