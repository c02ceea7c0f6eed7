-- retry_dead(id...) -> {requeued, skipped}
-- Puts failed and timed-out jobs back in the queue as fresh runs (new
-- session, new deadlines, attempts, sessions and claims reset), keeping
-- their step history. A job
-- whose login has another unfinished job is skipped.
local now = now_ms()
local requeued, skipped = 0, 0
for i = 1, #ARGV do
  local id = ARGV[i]
  local job = P .. 'job:' .. id
  local f = redis.call('HMGET', job, 'login', 'batch', 'state')
  local login, batch, state = f[1], f[2], f[3]
  local active = login and (P .. 'active:' .. login)
  if (state == 'failed' or state == 'timed_out') and redis.call('EXISTS', active) == 0 then
    redis.call('HINCRBY', job, 'seq', 1)
    redis.call('HSET', job, 'state', 'queued', 'attempts', 0, 'sessions', 0, 'claims', 0, 'request_id', '',
      'deadline', '', 'finished', '', 'not_before', '', 'updated', now, 'last', 'dead:retry')
    redis.call('HDEL', job, 'started')
    redis.call('HINCRBY', job, 'requeued', 1)
    count_move(batch, state, 'queued')
    redis.call('HDEL', P .. 'batch:' .. batch, 'completed')
    redis.call('ZREM', P .. 'dead', id)
    redis.call('ZREM', P .. 'finished', id)
    redis.call('SET', active, id)
    redis.call('SET', P .. 'latest:' .. login, id)
    redis.call('ZADD', due_key(id), now, id)
    requeued = requeued + 1
  else
    skipped = skipped + 1
  end
end
return { requeued, skipped }
