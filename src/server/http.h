/* libmicrohttpd front end of flashblock serve (http.c). */
#ifndef FB_SERVER_HTTP_H
#define FB_SERVER_HTTP_H
struct MHD_Daemon;
struct srv;
/* Serve on an already listening socket: one thread per connection, plus a
 * watchdog thread that answers 408 to connections whose request does not
 * arrive within --read-timeout. */
struct MHD_Daemon *srv_http_start(struct srv *S, int listen_fd, int ipv6);
/* Stop: wait (at most 2 s) until the responses of completion requests have
 * gone out -- at shutdown the engine ends them with a 503, in a stream as an
 * error event -- then close every connection. */
void srv_http_stop(struct srv *S, struct MHD_Daemon *d);
#endif
