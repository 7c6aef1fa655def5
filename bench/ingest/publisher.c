/* One benchmark publisher on libmosquitto: a provisioned device publishing
 * numbered Zigbee2MQTT motion reports at QoS 1 (MQTT v5), at most INFLIGHT
 * unacknowledged, so that the load generator costs little of the CPU under
 * test. bench/ingest/publishers.py compiles it at run time (gcc, -lmosquitto
 * from Debian's libmosquitto-dev) and drives it over stdin/stdout:
 *
 *   argv: host port username password client_id topic first_seq count inflight
 *   out:  "ready"                       once connected
 *   in:   any line                      the start signal
 *   out:  "done FIRST LAST ACKED REFUSED CPU CONNECTS"
 *         FIRST: CLOCK_MONOTONIC seconds of the first publish; LAST: of the
 *         last PUBACK; ACKED: PUBACKs with a success reason code (16, "no
 *         matching subscribers", included: the broker accepted the message);
 *         REFUSED: PUBACKs with a failure code; CPU: this process's CPU
 *         seconds from the start signal to the last PUBACK; CONNECTS:
 *         successful connects (more than 1 means a reconnect, which spoils
 *         the counts).
 *
 * Only PUBACKs count: a message is "sent" when the broker has accepted it.
 * The payload is byte for byte what bench/ingest/publishers.py's
 * motion_report(seq) returns.
 */
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static long inflight, acked, refused, connects, target;
static double last_puback;
static int connect_failed;

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_connect(struct mosquitto *m, void *u, int rc, int flags, const mosquitto_property *p)
{
	(void)m; (void)u; (void)flags; (void)p;
	pthread_mutex_lock(&lock);
	if (rc == 0) {
		connects++;
	} else {
		connect_failed = rc;
	}
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
}

static void on_publish(struct mosquitto *m, void *u, int mid, int reason, const mosquitto_property *p)
{
	(void)m; (void)u; (void)mid; (void)p;
	double now = clock_s(CLOCK_MONOTONIC);
	pthread_mutex_lock(&lock);
	if (reason >= 128) {
		refused++;
	} else {
		acked++;
	}
	inflight--;
	last_puback = now;
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
}

static int report(long seq, char *buf, size_t size)
{
	return snprintf(buf, size,
			"{\"battery\":97,\"device_temperature\":24,\"illuminance\":%ld,"
			"\"illuminance_lux\":%ld,\"linkquality\":%ld,\"occupancy\":%s,"
			"\"power_outage_count\":12,\"voltage\":3005,\"seq\":%ld}",
			41 + seq % 7, 41 + seq % 7, 120 + seq % 30, seq % 2 == 0 ? "true" : "false",
			seq);
}

int main(int argc, char **argv)
{
	if (argc != 10) {
		fprintf(stderr, "usage: %s host port user password client_id topic first count inflight\n",
			argv[0]);
		return 2;
	}
	const char *host = argv[1], *user = argv[3], *password = argv[4], *id = argv[5];
	const char *topic = argv[6];
	int port = atoi(argv[2]);
	long first_seq = atol(argv[7]), count = atol(argv[8]), window = atol(argv[9]);
	target = count;

	mosquitto_lib_init();
	struct mosquitto *m = mosquitto_new(id, true, NULL);
	if (m == NULL) {
		fprintf(stderr, "mosquitto_new failed\n");
		return 1;
	}
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, (int)window);
	mosquitto_username_pw_set(m, user, password);
	mosquitto_connect_v5_callback_set(m, on_connect);
	mosquitto_publish_v5_callback_set(m, on_publish);
	int rc = mosquitto_connect_bind_v5(m, host, port, 60, NULL, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "connect: %s\n", mosquitto_strerror(rc));
		return 1;
	}
	mosquitto_loop_start(m);

	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 15;
	pthread_mutex_lock(&lock);
	while (connects == 0 && !connect_failed) {
		if (pthread_cond_timedwait(&changed, &lock, &until) != 0)
			break;
	}
	int ok = connects > 0;
	pthread_mutex_unlock(&lock);
	if (!ok) {
		fprintf(stderr, "%s could not connect (%d)\n", id, connect_failed);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);

	char line[64];
	if (fgets(line, sizeof line, stdin) == NULL)
		return 1;

	double cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	double first = clock_s(CLOCK_MONOTONIC);
	char payload[512];
	for (long seq = first_seq; seq < first_seq + count; seq++) {
		pthread_mutex_lock(&lock);
		while (inflight >= window)
			pthread_cond_wait(&changed, &lock);
		inflight++;
		pthread_mutex_unlock(&lock);
		int len = report(seq, payload, sizeof payload);
		rc = mosquitto_publish_v5(m, NULL, topic, len, payload, 1, false, NULL);
		if (rc != MOSQ_ERR_SUCCESS) {
			fprintf(stderr, "publish: %s\n", mosquitto_strerror(rc));
			return 1;
		}
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 600;
	pthread_mutex_lock(&lock);
	while (acked + refused < target) {
		if (pthread_cond_timedwait(&changed, &lock, &until) != 0)
			break;
	}
	double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	printf("done %.6f %.6f %ld %ld %.6f %ld\n", first, last_puback, acked, refused, cpu, connects);
	pthread_mutex_unlock(&lock);
	fflush(stdout);
	mosquitto_disconnect(m);
	mosquitto_loop_stop(m, false);
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();
	return 0;
}
