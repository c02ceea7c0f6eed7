-- claim(n, lease_ms, token_base, authorize_timeout_ms, poll_spacing_ms)
--   -> {now, next_due or -1, {id, token, due, begun, queue, id, ...}}
-- Five values per claimed job, one after the other in one flat list (Redis
-- converts a nested table of a reply only after asking it for each of its
-- special fields, err, ok, double, map...): its id, the claim's fencing
-- token, its due time (`due`, the score it was claimed at), the spacing
-- the claim recorded when it also began the step ('' when it did not:
-- `begun`), and the priority of the due queue it was claimed from
-- (`queue`, the queue its commit puts it back in).
-- Not the job's fields: the worker reads each claimed job's hash with
-- `HGETALL`, pipelined, right after this call (shared/src/store/claim.rs).
-- Redis copies a hash's values into a reply far cheaper than into Lua
-- strings and back out (BENCHMARKS.md, the eighth pass of issue 14); the
-- worker takes a job only if the hash it reads carries the token given
-- here, so nothing written between the two calls is mistaken for its claim.
-- Moves at most n due jobs into leases (bounded by LIMIT: never an unbounded
-- range), high priority first, then normal, then low; gives each job a
-- fresh fencing token (`token`: the caller's random base and the job's index
-- in this call, so tokens never repeat, even after Redis loses data), and
-- returns them plus the earliest due time still waiting in any queue, so
-- the claimer can sleep exactly until then.
-- Each claim adds one to the job's `claims` (reset by an applied commit, so
-- a job that keeps killing its worker is seen as a poison pill). The first
-- claim starts the job's clock and puts its authorize deadline in
-- `deadlines`, so reap ends it even if no worker claims it again.
-- poll_spacing_ms ('' for none): the claim also does begin.lua's write for
-- a step about to run (the caller has no rate limit to apply): it records
-- the job's `not_before` (now + poll_spacing_ms for a poll, now for an
-- authorize), so a crash mid-call never makes two polls closer than the
-- interval, and the worker calls Flinks without a begin round trip while
-- the fresh lease it got here is certain to hold (see executor.rs).
-- Cost per job: one HMGET of the four fields the claim decides on and one
-- HSET; the due entries are removed, and the leases and authorize deadlines
-- added, in one command each per call.
local n = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local token_base = ARGV[3]
local authorize_timeout = tonumber(ARGV[4])
local poll_spacing = tonumber(ARGV[5] or '')
local now = now_ms()
local claimed = {}
local leases, deadlines = {}, {}
local function text(number)
  return string.format('%d', number)
end
-- numbers go to Redis as text made once per call where they repeat (every
-- lease and authorize deadline of this call has the same score) and with
-- %d: a Lua number becomes a string through printf's %.14g, some 3k
-- instructions, each time it is passed to redis.call or joined
local lease_until = text(now + lease)
local authorize_by = text(now + authorize_timeout)
local now_text = text(now)
-- a poll's `begun` and `not_before` (an authorize's: '0' and now)
local spacing_text = poll_spacing and text(poll_spacing)
local poll_not_before = poll_spacing and text(now + poll_spacing)
local claimed_count = 0
for q, queue in ipairs(DUE_QUEUES) do
  local want = n - claimed_count
  if want <= 0 then break end
  local due = redis.call('ZRANGE', queue, '-inf', now_text, 'BYSCORE', 'LIMIT', '0', text(want), 'WITHSCORES')
  if #due > 0 then
    -- removed first: an entry whose hash is gone (evicted, deleted) is
    -- dropped here instead of blocking the queue
    local ids = {}
    for i = 1, #due, 2 do ids[#ids + 1] = due[i] end
    in_slices('ZREM', queue, ids)
    for i = 1, #due, 2 do
      local id, due_at = due[i], due[i + 1]
      local job = job_key(id)
      local state, claims, started, request_id =
        unpack(redis.call('HMGET', job, 'state', 'claims', 'started', 'request_id'))
      if state and not TERMINAL[state] then
        claimed_count = claimed_count + 1
        local token = token_base .. '.' .. text(claimed_count)
        local updates = { 'token', token, 'claims', text((tonumber(claims) or 0) + 1) }
        if not started then
          updates[5] = 'started'
          updates[6] = now_text
          deadlines[#deadlines + 1] = authorize_by
          deadlines[#deadlines + 1] = id
        end
        local begun = ''
        if poll_spacing then
          local poll = state == 'polling' and (request_id or '') ~= ''
          updates[#updates + 1] = 'not_before'
          updates[#updates + 1] = poll and poll_not_before or now_text
          begun = poll and spacing_text or '0'
        end
        redis.call('HSET', job, unpack(updates))
        leases[2 * claimed_count - 1] = lease_until
        leases[2 * claimed_count] = id
        local at = 5 * (claimed_count - 1)
        claimed[at + 1] = id
        claimed[at + 2] = token
        claimed[at + 3] = due_at
        claimed[at + 4] = begun
        claimed[at + 5] = DUE_PRIORITIES[q]
      end
    end
  end
end
in_slices('ZADD', K.leases, leases)
in_slices('ZADD', K.deadlines, deadlines, 'NX')
local next_due = nil
for _, queue in ipairs(DUE_QUEUES) do
  local head = redis.call('ZRANGE', queue, '0', '0', 'WITHSCORES')
  if head[2] and (not next_due or tonumber(head[2]) < tonumber(next_due)) then
    next_due = head[2]
  end
end
return { now, next_due or '-1', claimed }
