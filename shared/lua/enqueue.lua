-- enqueue(batch, loginId...) -> {enqueued, already_active}
-- A login with an unfinished job (active:<login>) is skipped, so enqueueing the
-- same login twice while it is active creates one job.
local batch = ARGV[1]
local now = now_ms()
local created, active = 0, 0
for i = 2, #ARGV do
  local login = ARGV[i]
  local active_key = P .. 'active:' .. login
  if redis.call('EXISTS', active_key) == 1 then
    active = active + 1
  else
    local id = tostring(redis.call('INCR', P .. 'next_id'))
    redis.call('HSET', P .. 'job:' .. id,
      'login', login, 'batch', batch, 'state', 'queued', 'seq', 0,
      'attempts', 0, 'polls', 0, 'auths', 0, 'retries', 0,
      'created', now, 'updated', now)
    redis.call('SET', active_key, id)
    redis.call('SET', P .. 'latest:' .. login, id)
    redis.call('ZADD', P .. 'due', now, id)
    created = created + 1
  end
end
if created > 0 then
  redis.call('HINCRBY', P .. 'counts', 'queued', created)
  redis.call('HINCRBY', P .. 'counts', 'total', created)
  redis.call('HINCRBY', P .. 'counts', 'enqueued', created)
  redis.call('HINCRBY', P .. 'batch:' .. batch, 'queued', created)
  redis.call('HINCRBY', P .. 'batch:' .. batch, 'total', created)
  redis.call('ZADD', P .. 'batches', 'NX', now, batch)
end
return { created, active }
