#!/bin/sh
# webhook_bench: durable webhook intake over loopback HTTP, measured with wrk.
#
#   sh tests/bench/webhook_bench.sh [BUILD_DIR] [SECONDS] [CONNECTIONS] [REPS]
#
# Starts `promptd serve` (BUILD_DIR/promptd, default build-rel: configure it
# with -DCMAKE_BUILD_TYPE=Release) on a fresh database with one recipe on
# /hooks/bench whose runs stay queued (the bench measures intake, not the
# steps: the engine is given no free slot), posts 1 KiB JSON bodies with wrk
# and reports the median over REPS runs of requests/s and p50/p99 latency,
# the daemon's idle RSS before the load, its CPU time per request, and the
# same load with `engine.commit_each: true` (one transaction per request)
# for comparison.  Every 202 means the event and its run were fsync'd.
set -eu
build="${1:-build-rel}"
secs="${2:-10}"
conns="${3:-64}"
reps="${4:-3}"
promptd="$build/promptd"
[ -x "$promptd" ] || { echo "webhook_bench: no $promptd (build first)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "webhook_bench: wrk is not installed (apt-get install wrk)" >&2; exit 2; }

dir=$(mktemp -d /var/tmp/promptd-webhook-bench-XXXXXX)
pid=""; holder=""
trap 'kill -9 $pid $holder 2>/dev/null || true; rm -rf "$dir"' EXIT
mkdir "$dir/recipes"
# The engine gets one slot, and the first run's step calls a listener that
# never answers: every later run stays queued, so the CPU measured is
# intake's alone (HTTP, parsing, matching, storing, fsync).
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' > "$dir/hold.port" &
holder=$!
i=0
until [ -s "$dir/hold.port" ]; do i=$((i + 1)); [ $i -lt 50 ] || exit 1; sleep 0.1; done
cat > "$dir/recipes/bench.yaml" <<EOF
name: bench
trigger: { webhook: { path: /hooks/bench } }
steps:
  - id: hold
    http: { url: "http://127.0.0.1:$(cat "$dir/hold.port")/", timeout_s: 3600 }
EOF
# 1 KiB body: a lead with a long message.
msg=$(head -c 900 /dev/zero | tr '\0' 'x')
cat > "$dir/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name":"Ann Lee","company":"Acme","email":"ann@acme.example","message":"$msg"}'
EOF
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

one_run() { # $1: extra config line; prints "rps p50_ms p99_ms cpu_us rss_kib"
  rm -f "$dir"/db*
  printf 'engine: { concurrency: 1 %s}\nhttp: { listen: "127.0.0.1:%s", max_queue: 100000000 }\n' \
    "$1" "$port" > "$dir/config.yaml"
  "$promptd" --db "$dir/db" --config "$dir/config.yaml" --log-level warn serve \
    --recipes "$dir/recipes" 2>>"$dir/serve.log" &
  pid=$!
  i=0
  until curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "webhook_bench: daemon did not start" >&2; cat "$dir/serve.log" >&2; exit 1; }
    sleep 0.1
  done
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$dir/post.lua" "http://127.0.0.1:$port/hooks/bench")
  t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  echo "$out" | awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v rss="$rss" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
    /requests in/ { n = $1 } /Requests\/sec/ { rps = $2 }
    /Non-2xx/ { bad = $NF }
    END { if (bad) { print "webhook_bench: " bad " answers were not 202" > "/dev/stderr"; exit 1 }
          printf "%.0f %.2f %.2f %.1f %d\n", rps, p50, p99, (n ? t / hz / n * 1e6 : 0), rss }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

report() { # $1: label, $2: extra config
  : > "$dir/runs"
  r=0
  while [ $r -lt "$reps" ]; do one_run "$2" >> "$dir/runs"; r=$((r + 1)); done
  printf '%-28s %8s req/s  p50 %6s ms  p99 %6s ms  CPU %6s us/req  idle RSS %5s KiB\n' "$1" \
    "$(cut -d' ' -f1 "$dir/runs" | median)" "$(cut -d' ' -f2 "$dir/runs" | median)" \
    "$(cut -d' ' -f3 "$dir/runs" | median)" "$(cut -d' ' -f4 "$dir/runs" | median)" \
    "$(cut -d' ' -f5 "$dir/runs" | median)"
}

echo "webhook bench: 1 KiB JSON POSTs, $conns connections, ${secs} s, median of $reps runs"
report "group commit (default)" ""
report "one transaction per request" ", commit_each: true "
