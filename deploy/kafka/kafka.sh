#!/usr/bin/env bash
# Fetches, formats, starts and stops a local single-node Apache Kafka broker (KRaft mode).
# Usage: deploy/kafka/kafka.sh fetch|start|stop|wait|status|restart
# Settings (environment): KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093),
# KAFKA_DATA_DIR (<repo>/var/kafka), KAFKA_CACHE_DIR (~/.cache/ironarmy), KAFKA_HEAP (512m).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
version="3.9.1"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-9093}"
data_dir="${KAFKA_DATA_DIR:-$repo/var/kafka}"
cache_dir="${KAFKA_CACHE_DIR:-$HOME/.cache/ironarmy}"
libs="$cache_dir/kafka-$version/libs"
pid_file="$data_dir/kafka.pid"
log_file="$data_dir/server.log"

need_java() {
  command -v java >/dev/null || { echo "kafka.sh: Java 17+ is required (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
}

fetch() {
  # The jars come from Maven Central through Maven's own cache (~/.m2); later runs reuse them.
  if [ -f "$libs/kafka_2.13-$version.jar" ] && [ -f "$libs/reload4j-1.2.25.jar" ]; then return; fi
  command -v mvn >/dev/null || { echo "kafka.sh: Maven is required to fetch the broker jars" >&2; exit 1; }
  echo "kafka.sh: fetching Apache Kafka $version from Maven Central (first time only)..."
  mkdir -p "$libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$libs" -DincludeScope=runtime
}

write_config() {
  mkdir -p "$data_dir/logs"
  cat > "$data_dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$data_dir/logs
num.partitions=3
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
log.segment.bytes=67108864
PROPS
  cat > "$data_dir/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$data_dir/kafka-log4j.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
PROPS
}

jvm_opts=(-Xms256m -Xmx"${KAFKA_HEAP:-512m}" -XX:+UseG1GC -Djava.awt.headless=true
  -Dlog4j.configuration="file:$data_dir/log4j.properties" -cp "$libs/*")

running() {
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

start() {
  need_java
  fetch
  if running; then echo "kafka.sh: broker already running (pid $(cat "$pid_file"))"; return; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "kafka.sh: port $port is taken by another process (another broker?); set KAFKA_PORT" >&2; exit 1
  fi
  write_config
  if [ ! -f "$data_dir/logs/meta.properties" ]; then
    cluster_id="$(java "${jvm_opts[@]}" kafka.tools.StorageTool random-uuid | tail -n 1)"
    java "${jvm_opts[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$data_dir/server.properties" \
      --ignore-formatted >/dev/null
  fi
  : > "$log_file"
  : > "$data_dir/kafka-log4j.log"  # wait_ready looks for this start's "started" line only
  nohup java "${jvm_opts[@]}" kafka.Kafka "$data_dir/server.properties" >>"$log_file" 2>&1 &
  echo $! > "$pid_file"
  echo "kafka.sh: broker starting on 127.0.0.1:$port (pid $(cat "$pid_file"), logs in $data_dir)"
}

wait_ready() {
  # Ready means the broker says it started and accepts connections on its port.
  for _ in $(seq 1 240); do
    if ! running; then echo "kafka.sh: broker exited; see $data_dir/kafka-log4j.log" >&2; exit 1; fi
    if grep -q "Kafka Server started" "$data_dir/kafka-log4j.log" 2>/dev/null \
      && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "kafka.sh: broker ready on 127.0.0.1:$port"; return
    fi
    sleep 0.5
  done
  echo "kafka.sh: broker not ready after 120 s; see $data_dir/kafka-log4j.log" >&2; exit 1
}

stop() {
  if ! running; then rm -f "$pid_file"; echo "kafka.sh: broker not running"; return; fi
  local pid; pid="$(cat "$pid_file")"
  kill "${1:--TERM}" "$pid" 2>/dev/null || true
  for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pid_file"
  echo "kafka.sh: broker stopped"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  wait) wait_ready ;;
  up) start; wait_ready ;;
  stop) stop ;;
  kill) stop -KILL ;;
  restart) stop; start; wait_ready ;;
  status) if running; then echo "running (pid $(cat "$pid_file"))"; else echo "stopped"; exit 1; fi ;;
  *) echo "usage: $0 fetch|start|wait|up|stop|kill|restart|status" >&2; exit 2 ;;
esac
