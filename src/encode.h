/*
 * encode.h - API objects as JSON, exactly in the contract's shapes.
 */
#ifndef PARLEY_ENCODE_H
#define PARLEY_ENCODE_H

#include <stdint.h>

#include "buf.h"
#include "store.h"

void encode_session(struct buf *b, const struct session *s);
/* {"items":[...],"total":N,"limit":L,"offset":O,"has_more":bool} */
void encode_session_page(struct buf *b, const struct session_page *p,
                         int64_t limit, int64_t offset);
void encode_time(struct buf *b, int64_t ms);
void encode_message(struct buf *b, const struct message *m);
/* {"items":[...]} for a batch. */
void encode_message_items(struct buf *b, const struct message *m, size_t n);
void encode_message_page(struct buf *b, const struct message_page *p,
                         int64_t limit, int64_t offset);

#endif
