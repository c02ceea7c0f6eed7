-- retry_dead(id...) -> {requeued, skipped}
-- Puts failed and timed-out jobs back in the queue as fresh runs (see
-- requeue_dead). A job whose login has another unfinished job is skipped;
-- an id whose hash is gone is dropped from the indexes and counted skipped.
local now = now_ms()
local requeued, skipped = 0, 0
for i = 1, #ARGV do
  if requeue_dead(ARGV[i], now, '', '') == 'requeued' then
    requeued = requeued + 1
  else
    skipped = skipped + 1
  end
end
return { requeued, skipped }
