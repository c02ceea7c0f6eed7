-- enqueue(batch, priority, product, loginId1, jobId1, loginId2, jobId2, ...)
--   -> {enqueued, already_active, already_in_batch}
-- priority: high | normal | low (the claim order of the due queues).
-- product: a product name of Rust's table; every job of the call is of it.
-- Identity is (login, product): the same login under two products is two
-- jobs, with their own active, latest and result pointers.
-- Job ids are UUIDv7 chosen by the enqueuer, never a Redis counter: a counter
-- restarts at 1 when Redis loses data, and a stale step of an old job would
-- then name a new job of another login.
-- A login whose newest job of the product belongs to this batch is skipped
-- (running the same enqueue twice is idempotent, even after the batch
-- finished); a login with an unfinished job of the product
-- (active:<login>:<product>) is skipped, so enqueueing the same (login,
-- product) twice while it is active creates one job, also when it appears
-- twice in one call.
-- Per login: one HSET (the job); its latest and active pointers are read by
-- one MGET each and written by one MSET per call, and the due entries and
-- counters are written once per call. What is left of an enqueue's Redis
-- time is mostly the three keys a job is made of (BENCHMARKS.md, the fifth
-- pass of issue 14).
local batch, prio, product = ARGV[1], ARGV[2], ARGV[3]
local queue = DUE_QUEUE_OF[prio] or K.due
-- the clock made text once: Redis turns a Lua number into text with a
-- floating-point printf at every command that gets one, and each login's
-- HSET and due entry would
local now = string.format('%d', now_ms())

-- MGET of any number of keys, in bounded slices (see in_slices).
local function mget(keys)
  local values = {}
  for from = 1, #keys, 512 do
    local got = redis.call('MGET', unpack(keys, from, math.min(from + 511, #keys)))
    for i = 1, #got do values[from + i - 1] = got[i] end
  end
  return values
end

-- Tables grow by explicit counts, not `t[#t + 1]`: Lua finds a table's
-- length by a binary search each time, a few percent of an enqueue's
-- Redis time at a thousand logins per call.
-- Login k of the call is ARGV[2k + 2], its job id ARGV[2k + 3].
local count = (#ARGV - 3) / 2
local records, latests = {}, {}
for k = 1, count do
  local record = login_record(ARGV[2 * k + 2], product)
  records[k] = record
  latests[k] = latest_key(record)
end
local newest = mget(latests)

-- the logins whose newest job is not of this batch may be created
local in_batch = 0
local candidates, actives, nc = {}, {}, 0
for k = 1, count do
  if newest[k] and redis.call('HGET', job_key(newest[k]), 'batch') == batch then
    in_batch = in_batch + 1
  else
    nc = nc + 1
    candidates[nc] = k
    actives[nc] = active_key(records[k])
  end
end
local held = mget(actives)

local created = 0
local due, pointers, seen = {}, {}, {}
for c = 1, nc do
  local k = candidates[c]
  local login, id = ARGV[2 * k + 2], ARGV[2 * k + 3]
  -- a login's `active` pointer that names a job whose hash is gone
  -- (evicted, deleted) is stale: taken over instead of skipping the login
  -- forever. A login met twice in the call is active after its first.
  if not seen[records[k]] and (not held[c] or redis.call('EXISTS', job_key(held[c])) == 0) then
    seen[records[k]] = true
    created = created + 1
    if queue == K.due then
      redis.call('HSET', job_key(id), 'login', login, 'product', product, 'batch', batch, 'state', 'queued', 'created', now)
    else
      redis.call('HSET', job_key(id), 'login', login, 'product', product, 'batch', batch, 'state', 'queued', 'created', now, 'prio', prio)
    end
    due[2 * created - 1] = now
    due[2 * created] = id
    pointers[4 * created - 3] = actives[c]
    pointers[4 * created - 2] = id
    pointers[4 * created - 1] = latests[k]
    pointers[4 * created] = id
  end
end
if created > 0 then
  in_slices('ZADD', queue, due)
  in_slices('MSET', nil, pointers)
  redis.call('HINCRBY', K.counts, 'queued', created)
  redis.call('HINCRBY', K.counts, 'total', created)
  redis.call('HINCRBY', K.counts, 'enqueued', created)
  redis.call('HINCRBY', batch_key(batch), 'queued', created)
  redis.call('HINCRBY', batch_key(batch), 'total', created)
  redis.call('HDEL', batch_key(batch), 'completed')
  redis.call('ZADD', K.batches, 'NX', now, batch)
end
return { created, count - created - in_batch, in_batch }
