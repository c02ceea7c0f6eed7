-- retry_dead_page(bound_ms, after_score, after_id, limit, run, product)
--   -> {requeued, skipped, orphans, bound_ms, next_score, next_id, done}
-- One page of `flinkq dead retry --all`: walks `dead` in (score, id) order
-- from just after the cursor (after_score, after_id) up to bound_ms ('' on
-- the first page: Redis' clock now, returned for the next pages), and
-- requeues at most `limit` dead letters (see requeue_dead). A requeued job
-- that fails again re-enters `dead` with a newer score, past the bound, and
-- carries this walk's `run` mark: the walk never meets it twice, so each
-- dead letter is requeued once and the walk ends. Entries at the cursor's
-- score that an earlier page skipped are stepped over, not counted.
-- product ('' for every product) walks only the dead letters of that
-- product: the others are stepped over like skipped ones, not counted.
local now = now_ms()
local bound = tonumber(ARGV[1]) or now
local after_score, after_id = tonumber(ARGV[2]), ARGV[3]
local limit, run, only = tonumber(ARGV[4]), ARGV[5], ARGV[6] or ''
local dead = K.dead
local requeued, skipped, orphans, examined = 0, 0, 0, 0
-- entries looked at in this call that are still in `dead`: they sit before
-- every entry not looked at yet, so the next fetch starts past them
local stayed = 0
local next_score, next_id = after_score, after_id
while examined < limit do
  local page = redis.call('ZRANGE', dead, after_score, bound, 'BYSCORE',
    'LIMIT', stayed, limit - examined, 'WITHSCORES')
  if #page == 0 then
    return { requeued, skipped, orphans, string.format('%d', bound),
      string.format('%d', next_score), next_id, 1 }
  end
  for i = 1, #page, 2 do
    local id, score = page[i], tonumber(page[i + 1])
    if score == after_score and id <= after_id then
      stayed = stayed + 1
    else
      examined = examined + 1
      next_score, next_id = score, id
      local outcome = requeue_dead(id, now, run, only)
      if outcome == 'requeued' then
        requeued = requeued + 1
      elseif outcome == 'orphan' then
        orphans = orphans + 1
      else
        stayed = stayed + 1
        if outcome == 'skipped' then skipped = skipped + 1 end
      end
    end
  end
end
return { requeued, skipped, orphans, string.format('%d', bound),
  string.format('%d', next_score), next_id, 0 }
