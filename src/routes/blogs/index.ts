import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { Type } from 'typebox'
import type { Blog } from '../../repositories/blog-repository'
import { hasErrors, readBlogForm, type ParsedForm } from './form'
import { writeWithImage } from './unit-of-work'

// Path ids are checked here; a bad one is "no such page" (the error handler turns a params
// validation failure into a 404), never a 500.
const IdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) })
const ListQuery = Type.Object({ page: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 }) })

const emptyValues = { title: '', author: '', content: '' }

const blogRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { blogs, imageStore } = fastify
  const pageSize = fastify.appConfig.pageSize

  // Ajv coerces 'Infinity' (or '1e400') to Infinity and skips minimum/maximum for non-finite
  // numbers, so the schemas alone would let it reach SQL: no such page, like any bad id.
  fastify.addHook('preHandler', async (request) => {
    const id = (request.params as { id?: unknown }).id
    const page = (request.query as { page?: unknown } | undefined)?.page
    if ((id !== undefined && !Number.isSafeInteger(id)) || (page !== undefined && !Number.isSafeInteger(page))) throw new NoSuchPage()
  })

  const notFound = (reply: FastifyReply) =>
    reply.code(404).render('errors/error', { pageTitle: 'Not found', status: 404, message: 'There is no such post. It may have been deleted.' })

  const renderForm = (reply: FastifyReply, form: ParsedForm, post: Pick<Blog, 'id' | 'imageLoc'> | null) =>
    reply.code(form.status).render(post ? 'blogs/modify' : 'blogs/new', {
      pageTitle: post ? 'Edit post' : 'New post',
      values: form.values,
      errors: form.errors,
      post
    })

  fastify.get('/', { schema: { querystring: ListQuery } }, async (request, reply) => {
    const page = await blogs.listPage(request.query.page, pageSize)
    return reply.render('blogs/index', { pageTitle: 'Posts', page, flash: reply.takeFlash() })
  })

  fastify.get('/show/:id', { schema: { params: IdParams } }, async (request, reply) => {
    const post = await blogs.findById(request.params.id)
    if (!post) return notFound(reply)
    return reply.render('blogs/show', { pageTitle: post.title, post, flash: reply.takeFlash() })
  })

  fastify.get('/new', async (_request, reply) => {
    return reply.render('blogs/new', { pageTitle: 'New post', values: emptyValues, errors: {}, post: null })
  })

  fastify.post('/new', async (request, reply) => {
    const form = await readBlogForm(request, imageStore)
    if (hasErrors(form)) {
      if (form.image) await imageStore.discard(form.image.tempPath)
      return renderForm(reply, form, null)
    }
    await writeWithImage(fastify, form.image, async (t, imageName) => ({
      value: await blogs.create(form.values, imageName, t),
      obsolete: []
    }))
    return reply.flash('created').redirect('/blogs/', 303)
  })

  fastify.get('/modify/:id', { schema: { params: IdParams } }, async (request, reply) => {
    const post = await blogs.findById(request.params.id)
    if (!post) return notFound(reply)
    const values = { title: post.title, author: post.author, content: post.content }
    return reply.render('blogs/modify', { pageTitle: 'Edit post', values, errors: {}, post })
  })

  const modify = async (request: { params: { id: number } } & Parameters<typeof readBlogForm>[0], reply: FastifyReply) => {
    const id = request.params.id
    const form = await readBlogForm(request, imageStore)
    if (hasErrors(form)) {
      if (form.image) await imageStore.discard(form.image.tempPath)
      const post = await blogs.findById(id)
      return post ? renderForm(reply, form, post) : notFound(reply)
    }
    const found = await writeWithImage(fastify, form.image, async (t, imageName) => {
      const before = await blogs.update(id, form.values, imageName ?? undefined, t)
      if (!before) throw new PostNotFound()
      // A new image replaces the old one; without one the old image stays.
      return { value: true, obsolete: imageName ? [before.previousImage] : [] }
    }).catch((err: unknown) => {
      if (err instanceof PostNotFound) return false
      throw err
    })
    if (!found) return notFound(reply)
    return reply.flash('updated').redirect(`/blogs/show/${id}`, 303)
  }
  fastify.post('/modify/:id', { schema: { params: IdParams } }, modify)
  fastify.put('/modify/:id', { schema: { params: IdParams } }, modify)

  const remove = async (id: number): Promise<boolean> =>
    writeWithImage(fastify, null, async (t) => {
      const removed = await blogs.delete(id, t)
      return { value: removed !== undefined, obsolete: removed ? [removed.imageLoc] : [] }
    })

  fastify.delete('/delete/:id', { schema: { params: IdParams }, config: { json: true } }, async (request, reply) => {
    if (!(await remove(request.params.id))) {
      return reply.code(404).send({ message: `Post ${request.params.id} not found`, code: 'NOT_FOUND' })
    }
    return { message: `Post ${request.params.id} deleted` }
  })

  // The no-JavaScript delete button on the show page.
  fastify.post('/delete/:id', { schema: { params: IdParams } }, async (request, reply) => {
    if (!(await remove(request.params.id))) return notFound(reply)
    return reply.flash('deleted').redirect('/blogs/', 303)
  })
}

class PostNotFound extends Error {}

/** Handled like a failed params validation (src/errors.ts): the 404 page. */
class NoSuchPage extends Error {
  validation = []
  validationContext = 'params'
}

export default blogRoutes
