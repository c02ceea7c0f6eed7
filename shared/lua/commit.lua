-- commit(name, value, name, value, ...)
--   -> 1 applied | 0 fenced | 2 already applied (a retry of this commit_id)
-- The arguments are named: a flat list of (name, value) pairs built in one
-- place, `CommitParams` in shared/src/store/commit.rs, which lists every name
-- (COMMIT_ARGS); read here as `a.<name>`.
-- result_sink ('' | 'file' | 'redis') comes with a succeeded job: the result
-- pointer of the job's (login, product) `result:<login>:<product>` (the
-- file's path, or the gzip payload itself, and the login and product it
-- belongs to) is written here, with its TTL, in the same atomic step. The
-- product is the job's own, read from its hash (absent: the default).
-- Applies one transition computed by the worker, only if the caller still holds
-- the step: the job exists and belongs to `login`, its fencing token equals
-- the caller's and its lease is live. A stale worker (lease expired, reaped,
-- claimed elsewhere, or its job lost with Redis' data) changes nothing.
-- `commit_id` names this commit: a retry after a lost answer (a timeout) is
-- recognised as already applied, not taken for a fenced step.
-- An applied commit resets `claims` (see claim.lua): the job did not kill
-- the worker that ran this step; a fenced one gives its claim back.
local a = {}
for i = 1, #ARGV, 2 do
  a[ARGV[i]] = ARGV[i + 1]
end
local id, login, commit_id, state = a.id, a.login, a.commit_id, a.state
local job = job_key(id)
local held = redis.call('HMGET', job, 'login', 'token', 'commit_id', 'product')
if held[3] == commit_id then return 2 end
if held[1] ~= login then return 0 end
if held[2] ~= a.token or not redis.call('ZSCORE', K.leases, id) then
  give_back_claim(job)
  return 0
end
local now = now_ms()
redis.call('ZREM', K.leases, id)
-- the claim is spent: nothing else may commit or call under it
redis.call('HDEL', job, 'token')
redis.call('HSET', job,
  'request_id', a.request_id, 'deadline', a.deadline, 'attempts', a.attempts,
  'polls', a.polls, 'auths', a.auths, 'retries', a.retries,
  'err_code', a.err_code, 'err_http', a.err_http, 'err_msg', a.err_msg,
  'last', a.last, 'updated', now, 'commit_id', commit_id,
  'sessions', a.sessions, 'claims', 0, 'stage', a.stage, 'stage_accepted', a.stage_accepted)
if state == 'succeeded' and a.result_sink ~= '' then
  local product = product_of(held[4])
  local result = result_key(login_record(login, product))
  redis.call('DEL', result)
  redis.call('HSET', result, 'job', id, 'login', login, 'product', product, 'stored', now,
    'sink', a.result_sink, 'data', a.result_data)
  redis.call('PEXPIRE', result, tonumber(a.result_ttl_ms))
  local at = a.result_data
  if a.result_sink == 'redis' then at = result end
  redis.call('HSET', job, 'result_sink', a.result_sink, 'result_at', at)
end
if TERMINAL[state] then
  finish(id, state, now)
else
  local old = redis.call('HGET', job, 'state')
  redis.call('HSET', job, 'state', state)
  count_move(redis.call('HGET', job, 'batch'), old, state)
  redis.call('ZADD', due_key(id), tonumber(a.due), id)
  if a.deadline ~= '' then
    redis.call('ZADD', K.deadlines, tonumber(a.deadline), id)
  end
end
return 1
