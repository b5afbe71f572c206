-- bench/quantiles.lua: for wrk -s. Writes the run's latencies as 1,000
-- quantiles, "quantile <ms>" lines, each standing for 0.1 % of its requests,
-- so bench/tickets can put several runs' requests together.
function done(summary, latency, requests)
	for i = 1, 1000 do
		io.write(string.format("quantile %.3f\n", latency:percentile(i / 10) / 1000))
	end
end
