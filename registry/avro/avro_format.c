/* SPDX-License-Identifier: MIT */
/*
 * avro_format.c - the AVRO row of the format table: parse a text into a
 * cairn_schema_t carrying the model, its canonical and normalized strings
 * and the CRC-64-AVRO fingerprint of its Parsing Canonical Form
 * (avro_canonical.c says what each form keeps), and compare two parsed
 * schemas with Avro's resolution rules (avro_compat.c).
 */
#include "avro.h"

static void avro_model_free(void *model)
{
    cairn__avro_model_free(model);
}

static cairn_rc_t avro_parse(const char *text,
                             size_t len,
                             const cairn_schema_ref_t *refs,
                             size_t nrefs,
                             cairn_schema_t **out,
                             cairn_error_t *err)
{
    cairn_rc_t rc;
    cairn_avro_model_t *m = NULL;
    cairn_schema_t *s = NULL;
    char *pcf = NULL;
    size_t pcf_len = 0;

    *out = NULL;
    if ((rc = cairn__avro_parse(text, len, refs, nrefs, &m, err)) != CAIRN_OK)
        goto out;
    if (!(s = cairn__schema_new(&cairn__avro_format))) {
        rc = CAIRN_E_NOMEM;
        goto out;
    }
    s->model = m;
    m = NULL;
    if ((rc = cairn__avro_write(s->model, CAIRN_AVRO_FORM_CANONICAL, &s->canonical,
                                &s->canonical_len)) != CAIRN_OK ||
        (rc = cairn__avro_write(s->model, CAIRN_AVRO_FORM_NORMALIZED, &s->normalized,
                                &s->normalized_len)) != CAIRN_OK ||
        (rc = cairn__avro_write(s->model, CAIRN_AVRO_FORM_PCF, &pcf, &pcf_len)) != CAIRN_OK)
        goto out;
    s->fingerprint = cairn__avro_crc64(pcf, pcf_len);
    *out = s;
    s = NULL;
out:
    if (rc == CAIRN_E_NOMEM)
        cairn__error_set(err, rc, 0, NULL, "out of memory parsing a schema");
    cairn__free(pcf);
    cairn_schema_unref(s);
    cairn__avro_model_free(m);
    return rc;
}

static cairn_rc_t
avro_can_read(const cairn_schema_t *reader, const cairn_schema_t *writer, cairn_strlist_t *reasons)
{
    return cairn__avro_can_read(cairn__avro_model_root(reader->model),
                                cairn__avro_model_root(writer->model), reasons);
}

const cairn_format_t cairn__avro_format = {
    .name = "AVRO",
    .parse = avro_parse,
    .can_read = avro_can_read,
    .model_free = avro_model_free,
};
