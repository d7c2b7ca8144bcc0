# splitdns on every Nomad client node: a system job on the host network.
#
# Needs, on each client: the splitdns package installed with its own service
# disabled (`systemctl disable --now splitdns`: this job runs it instead), or
# the binary at /usr/bin/splitdns and a `splitdns` system user; and the
# raw_exec driver enabled (plugin "raw_exec" { config { enabled = true } } in
# the client config); Nomad 1.4 or later for the template's change_script.
# raw_exec starts tasks as the client's user, normally root: splitdns reads
# its config, then switches to [server] user keeping only
# CAP_NET_BIND_SERVICE, then binds port 53.
#
# The config splitdns reads is a copy in /run/splitdns, not the template's
# file in the task directory: Nomad's data directory is normally closed to
# other users, so once splitdns runs as `splitdns` it could not read the
# template's file again on a reload.
#
# Rolling out a config change: edit the template below (or the Consul KV key,
# see the comment in it) and `nomad job run` this file. Nomad re-renders the
# file on every node and runs the change_script: it copies the file to
# /run/splitdns and sends SIGHUP, and each splitdns reloads in place, keeps its
# cache and its listeners, and never stops answering. A config `splitdns
# check` would refuse is refused by every node, which keeps serving the
# previous one and logs why. Changes to the job itself (a new binary,
# resources) restart the tasks, one node at a time.

job "splitdns" {
  type        = "system"
  datacenters = ["*"]
  priority    = 90

  update {
    max_parallel = 1
    stagger      = "30s"
  }

  group "splitdns" {
    network {
      mode = "host"
    }

    restart {
      attempts = 10
      interval = "5m"
      delay    = "2s"
      mode     = "delay"
    }

    task "splitdns" {
      driver = "raw_exec"

      # Copies the rendered config out of the task directory, notes the PID
      # for the change_script (exec keeps it), and becomes splitdns.
      config {
        command = "/bin/sh"
        args = ["-c", <<-START
          set -e
          install -d -o splitdns -g splitdns -m 0755 /run/splitdns
          install -m 0644 "$NOMAD_TASK_DIR/splitdns.toml" /run/splitdns/splitdns.toml
          echo $$ > /run/splitdns/nomad.pid
          exec /usr/bin/splitdns run --config /run/splitdns/splitdns.toml
          START
        ]
      }

      # SIGTERM: stop taking queries, give those in flight up to 5 seconds.
      kill_signal  = "SIGTERM"
      kill_timeout = "10s"

      env {
        NO_COLOR = "1"
      }

      # The config. To manage it in Consul KV for the whole fleet instead,
      # replace the text between the EOT lines with:
      #   {{ key "splitdns/config" }}
      # and store the TOML there: `consul kv put splitdns/config @splitdns.toml`.
      template {
        destination = "local/splitdns.toml"
        perms       = "0600"
        change_mode = "script"
        change_script {
          command = "/bin/sh"
          args = ["-c", <<-RELOAD
            install -m 0644 "$NOMAD_TASK_DIR/splitdns.toml" /run/splitdns/splitdns.toml.new &&
            mv -f /run/splitdns/splitdns.toml.new /run/splitdns/splitdns.toml &&
            kill -HUP "$(cat /run/splitdns/nomad.pid)"
            RELOAD
          ]
          timeout       = "10s"
          fail_on_error = false
        }
        data = <<-EOT
          rules = ["rev-server=10.0.0.0/8,127.0.0.1#8600"]

          [server]
          # docker0 for Docker's default bridge; nomad for tasks in bridge
          # networking and Consul Connect sidecars (Nomad's bridge, by default
          # 172.26.64.0/20, inside the 172.16.0.0/12 allowed below).
          listen = ["127.0.0.1:53", "docker0:53", "nomad:53"]
          allow = ["127.0.0.0/8", "::1", "172.16.0.0/12"]
          user = "splitdns"

          [upstream]
          # The node's real resolvers, as systemd-resolved lists them (not its
          # stub). Elsewhere: a file that names them, or servers = [...].
          # The file is watched for changes.
          resolv_conf = "/run/systemd/resolve/resolv.conf"

          # The local agent; min_ttl caches its TTL 0 answers for 5 seconds.
          [[route]]
          zones = ["consul"]
          servers = ["127.0.0.1:8600"]
          min_ttl = 5
        EOT
      }

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
