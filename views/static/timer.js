/* timer.js: ticks the running timer in the top bar, and pauses a passive
 * timer when its ticket page is left. Without JavaScript the bar shows the
 * start time the server rendered and passive timers simply keep running. */
(function () {
    "use strict";
    /* Both the top bar and a passive ticket page may include this file. */
    if (window.tdTimer) {
        return;
    }
    window.tdTimer = true;
    var clock = document.querySelector(".timer-clock[data-started]");
    var passive = document.querySelector("[data-passive-stretch]");

    function pad(n) {
        return (n < 10 ? "0" : "") + n;
    }
    function show(s) {
        return Math.floor(s / 3600) + ":" + pad(Math.floor(s / 60) % 60) +
            ":" + pad(s % 60);
    }
    if (clock) {
        var started = Date.parse(clock.getAttribute("data-started"));
        var banked = parseInt(clock.getAttribute("data-banked") || "0", 10);
        if (clock.hasAttribute("data-paused")) {
            clock.textContent = "paused " + show(banked);
        } else if (!isNaN(started)) {
            var tick = function () {
                var s = Math.max(0, Math.floor((Date.now() - started) / 1000));
                clock.textContent = show(banked + s);
            };
            tick();
            window.setInterval(tick, 1000);
        }
    }
    if (passive && navigator.sendBeacon) {
        window.addEventListener("pagehide", function () {
            var f = new FormData();
            f.append("csrf", passive.getAttribute("data-csrf"));
            f.append("stretch", passive.getAttribute("data-passive-stretch"));
            navigator.sendBeacon("/timer/pause", f);
        });
        /* Back from the page cache: the server resumes on a fresh load. */
        window.addEventListener("pageshow", function (e) {
            if (e.persisted) {
                window.location.reload();
            }
        });
    }
}());
