-- wrk script for `make load` (driven by benches/load.sh; see there for the whole picture).
--
-- Every request is a real, durable state change of one product's pool: connections
-- alternate `POST /api/v1/products/<p>/slot` (idle -> granted: one SlotGranted event) and
-- `DELETE /api/v1/products/<p>/slot` (holder -> idle: one released event), each as a user
-- of its own (`X-Slotpool-User: u<k>`), so that no user has two requests in flight at once.
--
-- wrk (4.x) calls request() per *thread*, for whichever of the thread's connections is
-- ready to send, and tells the script nothing about which connection that is; response()
-- does not say which request it answers either. So users cannot be pinned to connections.
-- Instead each thread owns a disjoint block of `conns_per_thread * spare` users and hands
-- them out round-robin: a user comes back only after every other user of its thread has
-- been sent a request. Each connection has one request in flight at most, so with
-- spare = 1 (one user per connection) a user's previous request is normally complete by
-- the time its turn comes again; but answers do not come back strictly in order, and a
-- request overtaken by a whole round of its thread makes the reuse concurrent. Such a
-- collision is harmless for the server (requests are idempotent: a POST by a holder or a
-- DELETE by an idle user records nothing) but costs an event: measured, about 0.1-0.2% of
-- requests with spare = 1, none with spare = 2 (load.sh's default). load.sh checks the
-- journal's event counter against the number of requests and counts POSTs by a holder.
--
-- Arguments (after `--`): product, connections per thread, spare factor.
-- The per-thread state (users, their next method) lives in each thread's Lua state;
-- `tid` is given to each thread by setup(), which runs in wrk's main Lua state.

local next_tid = 0
local threads = {}

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

-- Per-thread state (globals of the thread's own Lua state).
local posts, deletes, holding = {}, {}, {}
local n, i = 0, 1
local skip_first = false
non2xx = 0

function init(args)
   local product = args[1] or "load"
   local conns = tonumber(args[2]) or 1
   local spare = tonumber(args[3]) or 1
   n = conns * spare
   local first = tid * n
   local path = "/api/v1/products/" .. product .. "/slot"
   for k = 1, n do
      local user = "u" .. (first + k - 1)
      -- wrk.format fills in Host (and Content-Length from the body), so a fresh table
      -- each time; POST carries an explicit empty body.
      posts[k] = wrk.format("POST", path, { ["X-Slotpool-User"] = user }, "")
      deletes[k] = wrk.format("DELETE", path, { ["X-Slotpool-User"] = user })
      holding[k] = false
   end
   -- wrk calls request() once in thread 0's state, right after init and before that
   -- thread starts, only to check the request parses (and to learn the pipeline depth);
   -- that request is never sent, so it must not advance the rotation or flip a user.
   skip_first = (tid == 0)
end

function request()
   if skip_first then
      skip_first = false
      return posts[1]
   end
   local k = i
   i = (i < n) and (i + 1) or 1
   local h = holding[k]
   holding[k] = not h
   if h then
      return deletes[k]
   end
   return posts[k]
end

function response(status)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end

-- Runs in the main Lua state once every thread has stopped: one machine-readable line
-- for load.sh (latencies in microseconds, duration in microseconds).
function done(summary, latency, requests)
   local bad = 0
   for _, t in ipairs(threads) do
      bad = bad + (tonumber(t:get("non2xx")) or 0)
   end
   local e = summary.errors
   io.write(string.format(
      "LOADRESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d "
         .. "non2xx=%d connect=%d read=%d write=%d timeout=%d status=%d\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      bad, e.connect, e.read, e.write, e.timeout, e.status))
end
