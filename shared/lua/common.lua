-- Shared prelude, prepended to every flinkq script at load time, after the
-- generated `KEYS` bindings (`K.<name>`, `<name>_key(record)`: see
-- shared/src/store/keys.rs). Every key a script touches comes from them.

-- Redis' own clock, in milliseconds: every worker shares it.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The record of the per-(login, product) keys (`active_key`, `latest_key`,
-- `result_key`): `<login>:<product>`, the format `login_record` in
-- shared/src/store/keys.rs builds for Rust. Built here and nowhere else.
local function login_record(login, product)
  return login .. ':' .. product
end

-- A job's product, as read from its hash: absent (a job stored before
-- products existed) is the default product (DEFAULT_PRODUCT, generated from
-- Rust's `Product::DEFAULT`).
local function product_of(stored)
  if not stored or stored == '' then return DEFAULT_PRODUCT end
  return stored
end

local TERMINAL = { succeeded = true, failed = true, timed_out = true, cancelled = true }

-- Due queues, claimed in this order: a small urgent batch is never stuck
-- behind a large backlog of lower priority.
local DUE_QUEUES = { K.due_high, K.due, K.due_low }
-- The priority whose jobs each of DUE_QUEUES holds, by position (Rust's
-- `Priority::as_str`): a claim tells its commit which queue the job goes
-- back to, and the commit finds it here by name.
local DUE_PRIORITIES = { 'high', 'normal', 'low' }
local DUE_QUEUE_OF = {}
for q, priority in ipairs(DUE_PRIORITIES) do DUE_QUEUE_OF[priority] = DUE_QUEUES[q] end

-- The due queue of a job, by its `prio` field (absent: normal).
local function due_key(id)
  return DUE_QUEUE_OF[redis.call('HGET', job_key(id), 'prio') or 'normal'] or K.due
end

-- Take back one of the job's `claims` (claims since its last commit, see
-- claim.lua): its holder came back alive — it gave the step back unstarted,
-- or it lost the claim (a lease that expired under load) and was fenced — so
-- that claim is no sign of a job that kills its worker (a poison pill).
local function give_back_claim(job)
  if (tonumber(redis.call('HGET', job, 'claims') or 0) or 0) > 0 then
    redis.call('HINCRBY', job, 'claims', -1)
  end
end

-- Whether a claim's token is the job's: a spent claim's token is stored
-- empty (see commit.lua), and an empty token never holds anything.
local function holds(stored, token)
  return token ~= '' and stored == token
end

-- Variadic writes in bounded slices: never one unpack of an unbounded list
-- (Lua's stack limits an unpack to a few thousand values).
-- `option` (e.g. 'NX') goes right after the key.
local function in_slices(command, key, args, option)
  local slice = 512
  for from = 1, #args, slice do
    local to = math.min(from + slice - 1, #args)
    if key and option then
      redis.call(command, key, option, unpack(args, from, to))
    elseif key then
      redis.call(command, key, unpack(args, from, to))
    else
      redis.call(command, unpack(args, from, to))
    end
  end
end

-- Counter moves summed over one script call, when the script asked for it
-- with sum_counts() (commit.lua: many commits per call move the same few
-- counters, one HINCRBY per distinct (key, field) at its end instead of
-- four per state change); nil: every move is applied at once.
local summed = nil

local function sum_counts()
  summed = { order = {}, deltas = {} }
end

local function add_count(key, field, by)
  local fields = summed.deltas[key]
  if not fields then
    fields = { order = {}, by = {} }
    summed.deltas[key] = fields
    summed.order[#summed.order + 1] = key
  end
  if not fields.by[field] then
    fields.by[field] = 0
    fields.order[#fields.order + 1] = field
  end
  fields.by[field] = fields.by[field] + by
end

-- What the sum of `key`'s `field` still owes to the stored count.
local function count_owed(key, field)
  local fields = summed.deltas[key]
  return (fields and fields.by[field]) or 0
end

-- Applies the summed moves, in the order first made (a script's writes are
-- replicated as they run: the same order every time), and starts again.
local function flush_counts()
  if not summed then return end
  for _, key in ipairs(summed.order) do
    local fields = summed.deltas[key]
    for _, field in ipairs(fields.order) do
      if fields.by[field] ~= 0 then
        redis.call('HINCRBY', key, field, fields.by[field])
      end
    end
  end
  summed = { order = {}, deltas = {} }
end

-- Move one job between per-state counters, globally and for its batch.
-- Touches nothing when the state does not change. With `left`, returns the
-- batch's count of `from` after the move (nil when nothing moved out of a
-- state): exact also while moves are summed, read by the one HINCRBY it
-- then applies at once plus what the sum still owes.
local function count_move(batch, from, to, left)
  if from == to then return nil end
  local batch_hash = batch_key(batch)
  if summed then
    add_count(K.counts, to, 1)
    add_count(batch_hash, to, 1)
    if not from then return nil end
    add_count(K.counts, from, -1)
    if left then
      return redis.call('HINCRBY', batch_hash, from, -1) + count_owed(batch_hash, from)
    end
    add_count(batch_hash, from, -1)
    return nil
  end
  local count = nil
  if from then
    redis.call('HINCRBY', K.counts, from, -1)
    count = redis.call('HINCRBY', batch_hash, from, -1)
  end
  redis.call('HINCRBY', K.counts, to, 1)
  redis.call('HINCRBY', batch_hash, to, 1)
  return count
end

-- Every sorted set that indexes job ids.
local JOB_INDEXES = { K.due_high, K.due, K.due_low,
  K.leases, K.deadlines, K.dead, K.finished }

-- Drop every index entry of a job whose hash is gone (evicted under memory
-- pressure, deleted by hand): such an entry must be cleaned up, never read
-- as a job (its login and batch are nil).
local function drop_orphan(id)
  for _, index in ipairs(JOB_INDEXES) do
    redis.call('ZREM', index, id)
  end
end

local UNFINISHED = { queued = true, authorizing = true, polling = true }

-- Finish a job in a terminal state: counters, indexes, dedupe key, dead
-- letters, the `results` entry and the batch's completion event, in one
-- HSET of the job plus what changes. `f` is what the caller read of the job
-- (login, batch, product, `old` state) and what it holds after this
-- script (err_code, result_sink, result_at); `set` more job fields for the
-- same HSET. `leased`: the caller held the job's lease (a commit) and
-- removed it, so the job is in no due queue (claim took it out, and only a
-- lease's end puts it back) and its lease entry is gone already.
local function finish_job(id, state, now, f, set, leased)
  local job = job_key(id)
  local login, batch = f.login, f.batch
  local product = product_of(f.product)
  redis.call('HSET', job, 'state', state, 'finished', now, 'updated', now, unpack(set or {}))
  local left = count_move(batch, f.old, state, true)
  -- one `results` stream entry per finished job, so a downstream service
  -- can consume results as they arrive (trimmed by retention, see purge)
  local entry = { 'job', id, 'login', login, 'product', product, 'batch', batch, 'state', state }
  if state == 'succeeded' and f.result_sink then
    entry[#entry + 1] = 'sink'
    entry[#entry + 1] = f.result_sink
    entry[#entry + 1] = 'location'
    entry[#entry + 1] = f.result_at
  elseif f.err_code and f.err_code ~= '' then
    entry[#entry + 1] = 'error'
    entry[#entry + 1] = f.err_code
  end
  redis.call('XADD', K.results, '*', unpack(entry))
  -- the batch's last unfinished job just finished: publish one completion
  -- event (HSETNX makes it once per completion; enqueue reopens the batch).
  -- While the batch still counts a job in the state this one left, it is
  -- open: only a count that reached zero needs the batch's other counts.
  local batch_hash = batch_key(batch)
  if not (UNFINISHED[f.old] and left and left > 0) then
    -- the batch's counts as they are: the summed moves applied first
    flush_counts()
    local b = redis.call('HMGET', batch_hash, 'queued', 'authorizing', 'polling', 'total')
    local open = (tonumber(b[1]) or 0) + (tonumber(b[2]) or 0) + (tonumber(b[3]) or 0)
    if open == 0 and (tonumber(b[4]) or 0) > 0 and redis.call('HSETNX', batch_hash, 'completed', now) == 1 then
      local counts = redis.call('HGETALL', batch_hash)
      redis.call('XADD', K.events, 'MAXLEN', '~', 100000, '*',
        'type', 'batch_completed', 'batch', batch, unpack(counts))
    end
  end
  if not leased then
    for _, queue in ipairs(DUE_QUEUES) do
      redis.call('ZREM', queue, id)
    end
    redis.call('ZREM', K.leases, id)
  end
  redis.call('ZREM', K.deadlines, id)
  -- the (login, product) may be enqueued again: its pointer is dropped in
  -- one command; one that named another job (this one's was lost, and the
  -- login enqueued since) is put back as it was
  local active = active_key(login_record(login, product))
  local named = redis.call('GETDEL', active)
  if named and named ~= id then
    redis.call('SET', active, named)
  end
  if state == 'failed' or state == 'timed_out' then
    redis.call('ZADD', K.dead, now, id)
  end
  redis.call('ZADD', K.finished, now, id)
end

-- Finish a job the caller does not hold (reap, cancel): reads what
-- finish_job needs. Returns false (and drops its index entries) when the
-- job's hash is gone.
local function finish(id, state, now)
  local f = redis.call('HMGET', job_key(id), 'login', 'batch', 'state', 'err_code', 'result_sink', 'result_at', 'product')
  if not f[1] then
    drop_orphan(id)
    return false
  end
  finish_job(id, state, now, { login = f[1], batch = f[2], old = f[3], err_code = f[4],
    result_sink = f[5], result_at = f[6], product = f[7] }, nil, false)
  return true
end

-- Requeue one dead letter as a fresh run (new session, new deadlines,
-- attempts, sessions and claims reset), keeping its step history. `run` ('' for none) marks the
-- job as requeued by one `dead retry --all` walk, so that walk never counts
-- it twice should it die again; `only` ('' for every product) restricts the
-- requeue to jobs of one product. Returns 'requeued', 'skipped' (not dead,
-- or its login has another unfinished job of that product), 'seen'
-- (requeued by this walk already), 'other' (another product than `only`) or
-- 'orphan' (its hash is gone; its index entries are dropped).
local function requeue_dead(id, now, run, only)
  local job = job_key(id)
  local f = redis.call('HMGET', job, 'login', 'batch', 'state', 'dead_retry', 'product')
  local login, batch, state = f[1], f[2], f[3]
  if not login then
    drop_orphan(id)
    return 'orphan'
  end
  local product = product_of(f[5])
  if only ~= '' and product ~= only then return 'other' end
  if run ~= '' and f[4] == run then return 'seen' end
  local record = login_record(login, product)
  local active = active_key(record)
  if not (state == 'failed' or state == 'timed_out') or redis.call('EXISTS', active) == 1 then
    return 'skipped'
  end
  redis.call('HDEL', job, 'token', 'started')
  redis.call('HSET', job, 'state', 'queued', 'attempts', 0, 'sessions', 0, 'claims', 0,
    'request_id', '', 'deadline', '', 'stage', 0, 'stage_accepted', 0, 'finished', '', 'not_before', '', 'updated', now, 'last', 'dead:retry')
  if run ~= '' then
    redis.call('HSET', job, 'dead_retry', run)
  end
  redis.call('HINCRBY', job, 'requeued', 1)
  count_move(batch, state, 'queued')
  redis.call('HDEL', batch_key(batch), 'completed')
  redis.call('ZREM', K.dead, id)
  redis.call('ZREM', K.finished, id)
  redis.call('SET', active, id)
  redis.call('SET', latest_key(record), id)
  redis.call('ZADD', due_key(id), now, id)
  return 'requeued'
end

-- Delete a finished job for good (retention, dead-letter purge): its hash,
-- its index entries, its counters, its batch once empty, its latest pointer.
local function delete_job(id)
  local job = job_key(id)
  local f = redis.call('HMGET', job, 'login', 'batch', 'state', 'product')
  local login, batch, state = f[1], f[2], f[3]
  redis.call('ZREM', K.finished, id)
  redis.call('ZREM', K.dead, id)
  if not state then return 0 end
  redis.call('DEL', job)
  redis.call('HINCRBY', K.counts, state, -1)
  redis.call('HINCRBY', K.counts, 'total', -1)
  local batch_hash = batch_key(batch)
  redis.call('HINCRBY', batch_hash, state, -1)
  if redis.call('HINCRBY', batch_hash, 'total', -1) <= 0 then
    redis.call('DEL', batch_hash)
    redis.call('ZREM', K.batches, batch)
  end
  local latest = latest_key(login_record(login, product_of(f[4])))
  if redis.call('GET', latest) == id then
    redis.call('DEL', latest)
  end
  return 1
end
