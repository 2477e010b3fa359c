// Package schedule turns the human schedule grammar of bunker's job file into
// calendar events, computes when a job runs next, and renders those events for
// the two schedulers bunker relies on: systemd timers and cron.
//
// # Grammar
//
// A schedule is one line:
//
//	once 2026-12-01 01:00        one run at that local time
//	hourly                       every hour on the hour
//	daily 02:00                  every day
//	weekly mon 03:00             every Monday (also "weekly mon,thu 03:00", "weekly mon..fri 22:00")
//	monthly 1 04:00              on the first day of each month
//	monthly third-mon 04:00      on the third Monday (first, second, third, fourth, last)
//	every 6h                     every 6 hours from midnight (also "every 15m")
//	OnCalendar=Mon..Fri 22:00    a systemd calendar expression, passed through
//
// followed by the options "window 1h" (start at a random, per-host stable
// moment inside the window) and "tz Europe/Berlin" (the zone the times are
// in; the local zone when absent). A line whose first word is not one of the
// keywords above is read as a systemd calendar expression, so
// "Mon..Fri 22:00" works too.
//
// # Calendar engine
//
// Every form compiles to a systemd calendar event (systemd.time(7)); the same
// engine parses raw OnCalendar expressions and computes [Schedule.Next], so
// the time bunker predicts is the time systemd fires (tests compare both
// against systemd-analyze). Weekday and date are AND-ed as in systemd.
//
// # Rendering
//
// [SystemdUnits] renders a oneshot service and a timer per job plus the
// failure-notification template unit; [Crontab] renders cron lines, each
// guarded by flock against overlapping runs (an overlapping start is recorded
// as skipped by "bunker job skipped"), with shell guards for what cron
// cannot express (the third Monday, a single year, a time zone). [Installer]
// writes the rendered files atomically under a root directory and records
// them in a manifest, so removal takes out exactly what was installed;
// [Inspect] finds what is installed and whether it still matches the jobs.
//
// # Time zones and clock changes
//
// A time in a zone that the zone's clock skips (02:30 on the day clocks go
// forward) does not run that day; a time the clock shows twice (02:30 on
// the day clocks go back) runs once, at its first occurrence. That is what
// systemd does with a zoned OnCalendar=, and [Schedule.Next] computes it.
// Cron has no portable per-line zone (CRON_TZ= is cronie's and Debian's
// cron ignores it), so a zoned cron line fires every hour at each minute
// of the system clock the zone's times can fall on and runs the job only
// when "TZ=zone date" shows a time of the schedule and did not show it an
// hour (the clock change) earlier: the same instants as the timer, in any
// cron and with any system zone.
package schedule
