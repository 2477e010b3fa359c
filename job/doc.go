// Package job is the model and the runtime helpers of bunker's jobs.
//
// A job file (YAML) holds repository settings and named jobs; [Load] and
// [Parse] read it with gopkg.in/yaml.v3's node API so every problem is
// reported with file, line and key, all at once ([Errors]): unknown keys
// (with a "did you mean"), bad values, duplicate keys and job names, jobs
// without sources, schedules that do not parse. [Example] is a commented
// job file that itself validates.
//
// [Runner] is "bunker job run": it takes the job's lock, runs the hooks,
// the backup, the retention and the prune, check and drill tasks that are
// due (the repository work is supplied by the caller as [Steps]), notifies,
// and records every step in the history. Its parts are usable alone:
//   - [RunHooks] runs hook commands with "sh -c", each in its own process
//     group killed at its timeout, capturing output;
//   - [TryLock] takes the job's lock (flock on a file in a state
//     directory), so an overlapping run is detected and recorded as skipped;
//   - [Notifier] runs the notify command and pings a healthchecks-style URL
//     (URL/start, URL, URL/fail); a failing notification is reported and
//     never changes the run's own status.
package job
