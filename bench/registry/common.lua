-- SPDX-License-Identifier: MIT
-- common.lua - shared by the wrk scripts of bench/registry: gives each wrk
-- thread an id, counts responses that are not 200 (or whose body does not
-- match the Lua pattern in BENCH_EXPECT) and prints one `key=value` line at
-- the end, so that run.sh never counts an error as a success. Loaded with
-- dofile() by get.lua, post.lua and register.lua; wrk runs every script once
-- in its main Lua state and once per thread.

local threads = {}

-- Main state: called once per thread before it starts. The values set here
-- become globals of that thread's state.
function setup(thread)
    threads[#threads + 1] = thread
    thread:set("tid", #threads)
end

-- Per-thread counters (globals, so the main state can read them back).
non200 = 0
bad_body = 0
local expect = os.getenv("BENCH_EXPECT")
if expect == "" then
    expect = nil
end

function response(status, headers, body)
    if status ~= 200 then
        non200 = non200 + 1
    elseif expect and not (body and body:find(expect)) then
        bad_body = bad_body + 1
    end
end

function done(summary, latency, requests)
    local n200, nbad = 0, 0
    for _, t in ipairs(threads) do
        n200 = n200 + (t:get("non200") or 0)
        nbad = nbad + (t:get("bad_body") or 0)
    end
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format(
        "wrk requests=%d duration_s=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
        "non200=%d bad_body=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
        summary.requests, secs, summary.requests / secs,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        n200, nbad, e.connect, e.read, e.write, e.timeout))
end
