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
-- product) twice while it is active creates one job. Per login: one GET, one SET NX
-- (dedupe and claim of the id in one command) and one HSET; the due entries,
-- latest pointers and counters are written once per call.
local batch, prio, product = ARGV[1], ARGV[2], ARGV[3]
local queue = K.due
if prio == 'high' then queue = K.due_high elseif prio == 'low' then queue = K.due_low end
local now = now_ms()
-- The login's `active` pointer names a job whose hash is gone (evicted,
-- deleted): the pointer is stale, take it over instead of skipping the login
-- forever.
local function orphan_active(record, id)
  local active = active_key(record)
  local held = redis.call('GET', active)
  if held and redis.call('EXISTS', job_key(held)) == 0 then
    redis.call('SET', active, id)
    return true
  end
  return false
end
local created = 0
local due, latest = {}, {}
local in_batch = 0
for i = 4, #ARGV, 2 do
  local login, id = ARGV[i], ARGV[i + 1]
  local record = login_record(login, product)
  local newest = redis.call('GET', latest_key(record))
  if newest and redis.call('HGET', job_key(newest), 'batch') == batch then
    in_batch = in_batch + 1
  elseif redis.call('SET', active_key(record), id, 'NX')
      or orphan_active(record, id) then
    created = created + 1
    if queue == K.due then
      redis.call('HSET', job_key(id), 'login', login, 'product', product, 'batch', batch, 'state', 'queued', 'created', now)
    else
      redis.call('HSET', job_key(id), 'login', login, 'product', product, 'batch', batch, 'state', 'queued', 'created', now, 'prio', prio)
    end
    due[#due + 1] = now
    due[#due + 1] = id
    latest[#latest + 1] = latest_key(record)
    latest[#latest + 1] = id
  end
end
if created > 0 then
  in_slices('ZADD', queue, due)
  in_slices('MSET', nil, latest)
  redis.call('HINCRBY', K.counts, 'queued', created)
  redis.call('HINCRBY', K.counts, 'total', created)
  redis.call('HINCRBY', K.counts, 'enqueued', created)
  redis.call('HINCRBY', batch_key(batch), 'queued', created)
  redis.call('HINCRBY', batch_key(batch), 'total', created)
  redis.call('HDEL', batch_key(batch), 'completed')
  redis.call('ZADD', K.batches, 'NX', now, batch)
end
return { created, (#ARGV - 3) / 2 - created - in_batch, in_batch }
