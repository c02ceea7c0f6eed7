-- commit(id, token, login, commit_id, ..., field, value, field, value, ...)
--   -> 1 applied | 0 fenced | 2 already applied (a retry of this commit_id)
-- The arguments are positional, built in one place, `CommitParams` in
-- shared/src/store/commit.rs, whose list COMMIT_ARGS names them; read here as
-- `a.<name>` through the `local a = { ... }` line generated from that list
-- and prepended to this script. From ARGV[CHANGED] on come (field, value)
-- pairs: the job's record fields this transition changes (RECORD_FIELDS),
-- written as they are; the held job's hash holds the others already.
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
-- Cost: one HMGET reads everything the script decides on (the fencing
-- fields and the job's state, batch, priority, deadline, result), the lease
-- removal is the lease check, and the job's changed fields go in one HSET;
-- counters move only when the state changes, `deadlines` only when the
-- deadline does. Numbers stay the strings Rust sent, and the clock is made
-- text once: Redis turns a Lua number into text with a floating-point
-- printf at every command that gets one.
local id, login, commit_id, state = a.id, a.login, a.commit_id, a.state
local job = job_key(id)
local held = redis.call('HMGET', job, 'login', 'token', 'commit_id', 'product',
  'state', 'batch', 'prio', 'deadline', 'result_sink', 'result_at')
if held[3] == commit_id then return 2 end
if held[1] ~= login then return 0 end
-- removing the lease is its check: only the holder of a live lease goes on
if not holds(held[2], a.token) or redis.call('ZREM', K.leases, id) == 0 then
  give_back_claim(job)
  return 0
end
local now = string.format('%d', now_ms())
local old, batch = held[5], held[6]
-- the claim is spent (token emptied, lease removed): nothing else may
-- commit or call under it
local set = { 'updated', now, 'commit_id', commit_id, 'token', '', 'claims', '0' }
for i = CHANGED, #ARGV do
  set[#set + 1] = ARGV[i]
end
local product = product_of(held[4])
local sink, at = held[9], held[10]
if state == 'succeeded' and a.result_sink ~= '' then
  -- every field of the pointer is written: no DEL needed first
  local result = result_key(login_record(login, product))
  redis.call('HSET', result, 'job', id, 'login', login, 'product', product, 'stored', now,
    'sink', a.result_sink, 'data', a.result_data)
  redis.call('PEXPIRE', result, a.result_ttl_ms)
  sink, at = a.result_sink, a.result_data
  if sink == 'redis' then at = result end
  set[#set + 1] = 'result_sink'
  set[#set + 1] = sink
  set[#set + 1] = 'result_at'
  set[#set + 1] = at
end
if TERMINAL[state] then
  finish_job(id, state, now, { login = login, batch = batch, old = old, product = held[4],
    err_code = a.err_code, result_sink = sink, result_at = at }, set, true)
else
  redis.call('HSET', job, 'state', state, unpack(set))
  count_move(batch, old, state)
  local queue = K.due
  if held[7] == 'high' then queue = K.due_high elseif held[7] == 'low' then queue = K.due_low end
  redis.call('ZADD', queue, a.due, id)
  if a.deadline ~= '' and a.deadline ~= held[8] then
    redis.call('ZADD', K.deadlines, a.deadline, id)
  end
end
return 1
