-- heartbeat.lua: record that a worker is alive and count the workers alive.
--
-- KEYS[1]  workers of one key prefix: sorted set, member = worker id, score =
--          last heartbeat in microseconds since the Unix epoch (Redis clock)
-- ARGV[1]  worker id (text chosen by the worker)
-- ARGV[2]  liveness window in microseconds (integer, >= 0). A worker whose last
--          heartbeat is older than this no longer counts. 0 removes the worker,
--          which a worker sends when it shuts down cleanly.
--
-- Returns the number of workers alive after this call, this one included
-- unless it was removed. The key expires one window after the latest heartbeat.

local worker = ARGV[1]
local window_us = tonumber(ARGV[2])

local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

if window_us <= 0 then
    redis.call('ZREM', KEYS[1], worker)
    return redis.call('ZCARD', KEYS[1])
end

redis.call('ZADD', KEYS[1], now_us, worker)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('(%.0f', now_us - window_us))
redis.call('PEXPIRE', KEYS[1], math.ceil(window_us / 1000))
return redis.call('ZCARD', KEYS[1])
