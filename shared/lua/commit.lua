-- commit(segment, segment, ...) -> { result, result, ... }, one per segment, in order:
--   1 applied | 0 fenced | 2 already applied (a retry of this commit_id)
-- Several commits in one call (group commit, see
-- shared/src/store/commit_batch.rs): each call costs Redis far more in
-- EVALSHA and Lua overhead (this text run again, ARGV and KEYS built, the
-- reply converted) than the commands of one commit. Each commit is decided
-- alone, exactly as if it came by itself: its fencing, its commit_id, its
-- finish; one fenced or failing commit changes nothing for the others.
-- A segment is one commit's positional arguments, built in one place,
-- `CommitParams` in shared/src/store/commit.rs, whose list COMMIT_ARGS names
-- them; read here as `a.<name>` through `args_at(offset, a)`, generated from
-- that list and prepended to this script. After them comes the count of
-- (field, value) pairs that follow: the job's record fields this transition
-- changes (RECORD_FIELDS), written as they are; the held job's hash holds
-- the others already.
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
-- fields and the job's product, state and batch, the first fields of its
-- hash; a succeeded job's stored result only when it sends none), the
-- lease removal is the lease check, and the job's changed fields go in one
-- HSET; counters move only when the state changes, summed over the call
-- (one HINCRBY per counter and state at its end, see count_move),
-- `deadlines` only when the deadline does. What the holder knows it sends
-- instead of the script reading it: the due queue it claimed the job from
-- (`queue`; the job's `prio` never changes, and most jobs lack the field, a
-- search to the end of the hash) and a deadline only when its transition
-- moved it (`deadline_moved`); while its token holds, no one else writes
-- either. Numbers stay the strings Rust sent, and the clock is read
-- once per call and made text once: Redis turns a Lua number into text with
-- a floating-point printf at every command that gets one.
local now = string.format('%d', now_ms())
-- the counters' moves of every commit of the call, applied at its end
sum_counts()

-- One commit: `a` its arguments, ARGV[from..to] its changed fields' pairs.
local function commit(a, from, to)
  local id, login, commit_id, state = a.id, a.login, a.commit_id, a.state
  local queue = DUE_QUEUE_OF[a.queue]
  if not queue then
    -- before any write: a commit fails whole or applies whole
    error('commit: unknown due queue ' .. tostring(a.queue))
  end
  local job = job_key(id)
  local held = redis.call('HMGET', job, 'login', 'token', 'commit_id', 'product',
    'state', 'batch')
  if held[3] == commit_id then return 2 end
  if held[1] ~= login then return 0 end
  -- removing the lease is its check: only the holder of a live lease goes on
  if not holds(held[2], a.token) or redis.call('ZREM', K.leases, id) == 0 then
    give_back_claim(job)
    return 0
  end
  local old, batch = held[5], held[6]
  -- the claim is spent (token emptied, lease removed): nothing else may
  -- commit or call under it
  local set = { 'updated', now, 'commit_id', commit_id, 'token', '', 'claims', '0' }
  for i = from, to do
    set[#set + 1] = ARGV[i]
  end
  local product = product_of(held[4])
  local sink, at = false, false
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
    if state == 'succeeded' and not sink then
      -- read only here: a job lacks these until it succeeds, and a field
      -- the hash lacks costs HMGET a search to the listpack's end
      local stored = redis.call('HMGET', job, 'result_sink', 'result_at')
      sink, at = stored[1], stored[2]
    end
    finish_job(id, state, now, { login = login, batch = batch, old = old, product = held[4],
      err_code = a.err_code, result_sink = sink, result_at = at }, set, true)
  else
    -- a poll that stays polling leaves `state` as it is
    if state ~= old then
      set[#set + 1] = 'state'
      set[#set + 1] = state
    end
    redis.call('HSET', job, unpack(set))
    count_move(batch, old, state)
    redis.call('ZADD', queue, a.due, id)
    if a.deadline_moved ~= '' then
      redis.call('ZADD', K.deadlines, a.deadline_moved, id)
    end
  end
  return 1
end

-- Each commit in a protected call: a command that fails (a key of another
-- type, written by hand) fails its own commit, as it would alone, and the
-- commits after it still run. Its answer is then the error's text (a
-- string: an error inside the reply would fail the whole call's reply).
local results = {}
local offset, last = 0, #ARGV
-- each commit's arguments, in one table set anew for each (see args_at)
local args = {}
while offset < last do
  local a = args_at(offset, args)
  local from = offset + COMMIT_ARGC + 2
  local to = from + 2 * tonumber(ARGV[from - 1]) - 1
  local ok, result = pcall(commit, a, from, to)
  if not ok then
    if type(result) == 'table' and result.err then result = result.err end
    result = tostring(result)
  end
  results[#results + 1] = result
  offset = to
end
flush_counts()
return results
