-- claim(n, lease_ms, token_base, authorize_timeout_ms, poll_spacing_ms)
--   -> {now, next_due or -1, {id, cmsgpack.pack({value, value, ...}), id, ...}}
-- Each job's values are those of CLAIMED_FIELDS in shared/src/store/claim.rs,
-- in its order (false: not in the hash), packed by cmsgpack into one
-- string: Redis converts one value per job out of Lua instead of one per
-- field, and the worker reads the values in place. The (id, values) pairs
-- follow each other in one list: Redis converts a nested table of a reply
-- only after asking it for each of its special fields (err, ok, double, map,
-- set...), some 7k instructions per job. Every slot holds text or
-- false, never nil (a table with a hole would pack as a map, which the
-- worker refuses). The values are bound here by the generated
-- STORED_FIELDS (the HMGET list) and F.<name> (a field's position): the
-- stored fields a claimer reads, then those the claim sets itself: its
-- token, `finished` (false: a claimed job is never in a terminal state),
-- the job's due time (`due`), when the claim also began the step, the
-- spacing it recorded (`begun`), and the priority of the queue it was
-- claimed from (`queue`), the queue its commit puts it back in.
-- Moves at most n due jobs into leases (bounded by LIMIT: never an unbounded
-- range), high priority first, then normal, then low; gives each job a
-- fresh fencing token (`token`: the caller's random base and the job's index
-- in this call, so tokens never repeat, even after Redis loses data), and
-- returns their snapshots plus the earliest due time still waiting in any
-- queue, so the claimer can sleep exactly until then.
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
-- Cost per job: one HMGET and one HSET; the due entries are removed, and
-- the leases and authorize deadlines added, in one command each per call.
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
      local values = redis.call('HMGET', job, unpack(STORED_FIELDS))
      local state = values[F.state]
      if state and not TERMINAL[state] then
        claimed_count = claimed_count + 1
        local token = token_base .. '.' .. text(claimed_count)
        local claims = text((tonumber(values[F.claims]) or 0) + 1)
        local updates = { 'token', token, 'claims', claims }
        -- the values as they are now
        values[F.token], values[F.claims] = token, claims
        if not values[F.started] then
          values[F.started] = now_text
          updates[#updates + 1] = 'started'
          updates[#updates + 1] = values[F.started]
          deadlines[#deadlines + 1] = authorize_by
          deadlines[#deadlines + 1] = id
        end
        values[F.finished] = false
        values[F.due] = due_at
        values[F.begun] = false
        values[F.queue] = DUE_PRIORITIES[q]
        if poll_spacing then
          local poll = state == 'polling' and (values[F.request_id] or '') ~= ''
          updates[#updates + 1] = 'not_before'
          updates[#updates + 1] = poll and poll_not_before or now_text
          values[F.begun] = poll and spacing_text or '0'
        end
        redis.call('HSET', job, unpack(updates))
        leases[2 * claimed_count - 1] = lease_until
        leases[2 * claimed_count] = id
        claimed[2 * claimed_count - 1] = id
        claimed[2 * claimed_count] = cmsgpack.pack(values)
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
