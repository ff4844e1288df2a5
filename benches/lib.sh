# Shared by the load scripts in benches/ (sourced, not run).

# Install wrk from Debian's packages when it is missing.
ensure_wrk() {
  if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)" >&2
    apt-get install -y wrk >/dev/null
  fi
}

# wrk prints latencies as 12.34us / 1.23ms / 1.02s; print microseconds.
to_us() {
  awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000000} else print v}'
}

# The median of the numbers on standard input, one per line.
median() {
  sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

# Wait (at most 10 s) until URL answers with a success status; extra
# arguments go to curl (e.g. -d '{}' to POST). Fails when it never does.
wait_for() {
  local url=$1; shift
  for _ in $(seq 1 100); do
    curl -sfk -o /dev/null "$@" "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no answer from $url" >&2
  return 1
}
