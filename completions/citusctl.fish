# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_citusctl_global_optspecs
    string join \n i/inventory= v/verbose h/help V/version
end

function __fish_citusctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_citusctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_citusctl_using_subcommand
    set -l cmd (__fish_citusctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c citusctl -n "__fish_citusctl_needs_command" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_needs_command" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_needs_command" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "list" -d 'Show every group and member, and whether pg_dist_node agrees with Patroni'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "resync" -d 'Make pg_dist_node match the inventory and the live Patroni state'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "add-worker" -d 'Register a worker group in pg_dist_node (RW VIP as primary, RO VIP as secondary, or the leader\'s real address in direct mode)'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "remove-worker" -d 'Drain a worker group of its shards and remove it from pg_dist_node'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "rebalance" -d 'Move shards onto empty or lightly used worker groups (Citus\'s background rebalance), with a progress bar'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "switchover" -d 'Switch a group over to a replica; worker groups are paused in Citus meanwhile'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "failover" -d 'Promote a member of a group whose leader is gone, then repair pg_dist_node at once'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "restart" -d 'Restart PostgreSQL on every member of the chosen groups, in a safe order'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "reload" -d 'Reload the configuration of every member of the chosen groups'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "pause" -d 'Put groups into Patroni\'s maintenance mode (no automatic failover)'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "resume" -d 'Take groups out of Patroni\'s maintenance mode'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "history" -d 'Show every group\'s timeline history'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "check" -d 'Check the whole cluster: replication, split brain, VIPs, Citus metadata, versions and settings. Changes nothing'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "show-config" -d 'Show each scope\'s Patroni dynamic configuration, or where worker scopes differ'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "version" -d 'Show citusctl\'s version and every member\'s Patroni, PostgreSQL and Citus versions'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "completions" -d 'Print the shell completion script for SHELL to stdout'
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "generate-assets"
complete -c citusctl -n "__fish_citusctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c citusctl -n "__fish_citusctl_using_subcommand list" -s f -l format -d 'Output format' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand list" -s w -l watch -d 'Redraw every SECONDS until interrupted' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand list" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand list" -s W -d 'Redraw every 2 seconds until interrupted'
complete -c citusctl -n "__fish_citusctl_using_subcommand list" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand list" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -l metrics -d 'Serve the controller\'s Prometheus metrics on this address (with --watch), e.g. 127.0.0.1:9187: GET /metrics (passes, repairs, errors, seconds since the last good pass, drift per group)' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -l interval -d 'How often the controller looks (with --watch)' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -l terminate-after -d 'Let Citus terminate the sessions that block citus_update_node once they have had this long to finish (Citus `force => true, lock_cooldown`). Without it, a long writer on the group delays the update up to --statement-timeout, then nothing changes' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -l statement-timeout -d 'Roll back when one Citus call waits longer than this' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -s f -l format -d 'Output format' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -l dry-run -d 'Show the plan and stop'
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -l check -d 'Change nothing; exit 1 when pg_dist_node differs from what it should be (for cron)'
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -s y -l yes -d 'Apply without asking (needed when stdin is not a terminal)'
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -l force -d 'Same as --yes (patronictl\'s habit; it means nothing else in citusctl)'
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -l watch -d 'Run as a controller: repair pg_dist_node whenever it drifts, until SIGTERM or Ctrl-C'
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -l terminate-sessions -d 'After changing citus.use_secondary_nodes on a coordinator member, end its other client sessions (the setting applies to new sessions only)'
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand resync" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand add-worker" -l shard-transfer-mode -d 'How Citus copies a shard (with --rebalance)' -r -f -a "auto\t'Logical replication when every table has a replica identity, else refuse'
force_logical\t'Logical replication even without a replica identity (UPDATE/DELETE fail during the move)'
block_writes\t'COPY with writes blocked while a shard moves (no logical replication needed)'"
complete -c citusctl -n "__fish_citusctl_using_subcommand add-worker" -s f -l format -d 'Output format' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand add-worker" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand add-worker" -l with-secondaries -d 'Direct mode: also register the running replicas as `secondary` rows'
complete -c citusctl -n "__fish_citusctl_using_subcommand add-worker" -l rebalance -d 'Then move shards onto the group: `citusctl rebalance`, followed to its end'
complete -c citusctl -n "__fish_citusctl_using_subcommand add-worker" -l dry-run -d 'Show the plan and stop'
complete -c citusctl -n "__fish_citusctl_using_subcommand add-worker" -s y -l yes -d 'Apply without asking (needed when stdin is not a terminal)'
complete -c citusctl -n "__fish_citusctl_using_subcommand add-worker" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand add-worker" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand add-worker" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand remove-worker" -l shard-transfer-mode -d 'How Citus copies a shard while draining' -r -f -a "auto\t'Logical replication when every table has a replica identity, else refuse'
force_logical\t'Logical replication even without a replica identity (UPDATE/DELETE fail during the move)'
block_writes\t'COPY with writes blocked while a shard moves (no logical replication needed)'"
complete -c citusctl -n "__fish_citusctl_using_subcommand remove-worker" -s f -l format -d 'Output format' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand remove-worker" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand remove-worker" -l dry-run -d 'Show the plan and stop'
complete -c citusctl -n "__fish_citusctl_using_subcommand remove-worker" -s y -l yes -d 'Apply without asking (needed when stdin is not a terminal)'
complete -c citusctl -n "__fish_citusctl_using_subcommand remove-worker" -l no-drain -d 'Never move shards: refuse when the group holds the only copy of a shard'
complete -c citusctl -n "__fish_citusctl_using_subcommand remove-worker" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand remove-worker" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand remove-worker" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand rebalance" -l shard-transfer-mode -d 'How Citus copies a shard' -r -f -a "auto\t'Logical replication when every table has a replica identity, else refuse'
force_logical\t'Logical replication even without a replica identity (UPDATE/DELETE fail during the move)'
block_writes\t'COPY with writes blocked while a shard moves (no logical replication needed)'"
complete -c citusctl -n "__fish_citusctl_using_subcommand rebalance" -s f -l format -d 'Output format' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand rebalance" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand rebalance" -l dry-run -d 'Show Citus\'s plan and the checks, and stop'
complete -c citusctl -n "__fish_citusctl_using_subcommand rebalance" -s y -l yes -d 'Start without asking (needed when stdin is not a terminal)'
complete -c citusctl -n "__fish_citusctl_using_subcommand rebalance" -l wait -d 'Start nothing: follow the rebalance under way to its end, or say how the last one ended (a rebalance this command starts is followed anyway, unless --no-wait)'
complete -c citusctl -n "__fish_citusctl_using_subcommand rebalance" -l no-wait -d 'Start the rebalance and return; it goes on in the background'
complete -c citusctl -n "__fish_citusctl_using_subcommand rebalance" -l stop -d 'Stop the rebalance under way (citus_rebalance_stop); moves already done stay done'
complete -c citusctl -n "__fish_citusctl_using_subcommand rebalance" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand rebalance" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand rebalance" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -l candidate -d 'The member to promote (default: pick on a terminal, or the best with --yes)' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -l scheduled -d 'Hand a scheduled switchover to Patroni (ISO 8601 with time zone). Patroni runs it by itself, without the Citus pause: `citusctl resync --watch` should be running then' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -l max-lag -d 'Largest replication lag (bytes) a candidate may have' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -l pause-timeout -d 'Longest the group may stay paused; past it the pause is rolled back' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -l pause-wait -d 'How long to keep trying to get the pause: each try waits at most 100 ms (under the server\'s deadlock_timeout) for the transactions in the way, then lets go and tries again, so that clients never wait long behind it. Past this, nothing changed: exit 4, and the sessions in the way are named' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -l terminate-after -d 'Instead of giving up, let Citus terminate the sessions in the pause\'s way once they have had this long to finish (Citus `force => true, lock_cooldown`). They are named' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -s f -l format -d 'Output format of the summary' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -s y -l yes -d 'Do not ask'
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -l force -d 'Same as --yes (patronictl\'s habit)'
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -l dry-run -d 'Show the plan and stop'
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -l no-pause -d 'Switch over without pausing (the plain way: writes fail meanwhile), then fix pg_dist_node'
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -l hold-reads -d 'Hold reads of a worker group too, not only writes: reads through the coordinator wait instead of failing while the old leader shuts down. Inside the pause, before it, the group\'s distributed tables are locked (ACCESS EXCLUSIVE) on the coordinator only, with the same short tries as the pause. The price: while held, EVERY query through the coordinator on those tables waits, other groups\' shards included; queries started on worker nodes directly are not held. Needs the right to LOCK those tables'
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand switchover" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand failover" -l candidate -d 'The member to promote' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand failover" -l timeout -d 'Give up waiting for the candidate to be writable after this long' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand failover" -s f -l format -d 'Output format' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand failover" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand failover" -s y -l yes -d 'Do not ask'
complete -c citusctl -n "__fish_citusctl_using_subcommand failover" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand failover" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand failover" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand restart" -l pause-timeout -d 'Longest a worker group may stay paused while its leader restarts (Patroni\'s restart included); past it the pause is let go' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand restart" -l pause-wait -d 'How long to keep trying to get the pause (short tries that never make clients wait long); past it the leader is not restarted (exit 4) and the sessions in the way are named' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand restart" -l terminate-after -d 'Instead of giving up, let Citus terminate the sessions in the pause\'s way once they have had this long to finish. They are named' -r
complete -c citusctl -n "__fish_citusctl_using_subcommand restart" -s f -l format -d 'Output format' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand restart" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand restart" -l all -d 'Act on every group of the inventory'
complete -c citusctl -n "__fish_citusctl_using_subcommand restart" -l pending -d 'Only members whose configuration has a change pending a restart'
complete -c citusctl -n "__fish_citusctl_using_subcommand restart" -l no-pause -d 'Do not pause worker groups around their leader\'s restart'
complete -c citusctl -n "__fish_citusctl_using_subcommand restart" -l hold-reads -d 'Hold reads of a worker group too while its leader restarts, not only writes: the group\'s distributed tables are locked (ACCESS EXCLUSIVE) on the coordinator, before the pause. The price: meanwhile EVERY query through the coordinator on those tables waits, other groups\' shards included; queries started on worker nodes directly are not held. Needs the right to LOCK those tables'
complete -c citusctl -n "__fish_citusctl_using_subcommand restart" -s y -l yes -d 'Do not ask'
complete -c citusctl -n "__fish_citusctl_using_subcommand restart" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand restart" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand restart" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand reload" -s f -l format -d 'Output format' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand reload" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand reload" -l all -d 'Act on every group of the inventory'
complete -c citusctl -n "__fish_citusctl_using_subcommand reload" -s y -l yes -d 'Do not ask'
complete -c citusctl -n "__fish_citusctl_using_subcommand reload" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand reload" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand reload" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand pause" -s f -l format -d 'Output format' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand pause" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand pause" -l all -d 'Act on every group of the inventory'
complete -c citusctl -n "__fish_citusctl_using_subcommand pause" -s y -l yes -d 'Do not ask'
complete -c citusctl -n "__fish_citusctl_using_subcommand pause" -l no-wait -d 'Do not wait until every member reports the new mode'
complete -c citusctl -n "__fish_citusctl_using_subcommand pause" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand pause" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand pause" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand resume" -s f -l format -d 'Output format' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand resume" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand resume" -l all -d 'Act on every group of the inventory'
complete -c citusctl -n "__fish_citusctl_using_subcommand resume" -s y -l yes -d 'Do not ask'
complete -c citusctl -n "__fish_citusctl_using_subcommand resume" -l no-wait -d 'Do not wait until every member reports the new mode'
complete -c citusctl -n "__fish_citusctl_using_subcommand resume" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand resume" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand resume" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand history" -s f -l format -d 'Output format' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand history" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand history" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand history" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand history" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand check" -s f -l format -d 'Output format' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand check" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand check" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand check" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand show-config" -s f -l format -d 'Output format' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand show-config" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand show-config" -l diff -d 'Only the keys that differ between the worker scopes (or between the scopes named)'
complete -c citusctl -n "__fish_citusctl_using_subcommand show-config" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand show-config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand show-config" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand version" -s f -l format -d 'Output format' -r -f -a "pretty\t'Tables for people'
json\t'One JSON document (with `format_version`)'
yaml\t'The same document as YAML'
tsv\t'Tab-separated values, one line per row, with a header line'"
complete -c citusctl -n "__fish_citusctl_using_subcommand version" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand version" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand version" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand version" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand completions" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand completions" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c citusctl -n "__fish_citusctl_using_subcommand completions" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand generate-assets" -s i -l inventory -d 'Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]' -r -F
complete -c citusctl -n "__fish_citusctl_using_subcommand generate-assets" -s v -l verbose -d 'More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug'
complete -c citusctl -n "__fish_citusctl_using_subcommand generate-assets" -s h -l help -d 'Print help'
complete -c citusctl -n "__fish_citusctl_using_subcommand generate-assets" -s V -l version -d 'Print version'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "list" -d 'Show every group and member, and whether pg_dist_node agrees with Patroni'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "resync" -d 'Make pg_dist_node match the inventory and the live Patroni state'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "add-worker" -d 'Register a worker group in pg_dist_node (RW VIP as primary, RO VIP as secondary, or the leader\'s real address in direct mode)'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "remove-worker" -d 'Drain a worker group of its shards and remove it from pg_dist_node'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "rebalance" -d 'Move shards onto empty or lightly used worker groups (Citus\'s background rebalance), with a progress bar'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "switchover" -d 'Switch a group over to a replica; worker groups are paused in Citus meanwhile'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "failover" -d 'Promote a member of a group whose leader is gone, then repair pg_dist_node at once'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "restart" -d 'Restart PostgreSQL on every member of the chosen groups, in a safe order'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "reload" -d 'Reload the configuration of every member of the chosen groups'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "pause" -d 'Put groups into Patroni\'s maintenance mode (no automatic failover)'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "resume" -d 'Take groups out of Patroni\'s maintenance mode'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "history" -d 'Show every group\'s timeline history'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "check" -d 'Check the whole cluster: replication, split brain, VIPs, Citus metadata, versions and settings. Changes nothing'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "show-config" -d 'Show each scope\'s Patroni dynamic configuration, or where worker scopes differ'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "version" -d 'Show citusctl\'s version and every member\'s Patroni, PostgreSQL and Citus versions'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "completions" -d 'Print the shell completion script for SHELL to stdout'
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "generate-assets"
complete -c citusctl -n "__fish_citusctl_using_subcommand help; and not __fish_seen_subcommand_from list resync add-worker remove-worker rebalance switchover failover restart reload pause resume history check show-config version completions generate-assets help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
