#ifndef CTL_STREAMS_H
#define CTL_STREAMS_H
/* ctl_streams_main - `ternctl streams ...`. Returns an exit code. */
int ctl_streams_main(int argc, char **argv);
#endif
